from aleph.cli import main

raise SystemExit(main())
