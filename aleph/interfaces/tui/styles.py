"""The TUI's stylesheet (Textual CSS).

Kept in a Python module rather than a .tcss file so that it ships inside the
package with no package-data setup.
"""

__all__ = ["STYLES"]

STYLES = """
Screen {
    layout: vertical;
}

#banner {
    dock: top;
    height: auto;
    padding: 0 1;
    background: $error;
    color: $text;
    text-style: bold;
}

#main {
    height: 1fr;
}

#sessions {
    width: 30;
    height: 1fr;
    border: round $primary-darken-2;
}

#sessions:focus {
    border: round $accent;
}

#centre {
    width: 1fr;
}

#transcript {
    height: 1fr;
    border: round $primary-darken-2;
    padding: 0 1;
}

#transcript:focus {
    border: round $accent;
}

#transcript .user {
    margin: 1 0 0 0;
    padding: 0 1;
    border-left: thick $accent;
    background: $boost;
}

#transcript .assistant {
    margin: 1 0 0 0;
    padding: 0 0 0 1;
}

#transcript .notice {
    margin: 1 0 0 0;
    color: $warning;
    text-style: italic;
}

#transcript .tool {
    color: $text-muted;
}

#pending {
    margin: 1 0 0 0;
}

#input {
    height: 3;
}

#tools-box {
    width: 36;
    height: 1fr;
    border: round $primary-darken-2;
}

#tools {
    height: auto;
}

#status {
    height: 1;
    padding: 0 1;
    background: $panel;
}

HelpScreen, ConfirmScreen {
    align: center middle;
}

#help {
    width: 76;
    height: auto;
    max-height: 90%;
    border: round $accent;
    background: $surface;
    padding: 0 1;
}

#confirm {
    width: 50;
    height: auto;
    border: round $error;
    background: $surface;
    padding: 1 2;
}

#confirm .hint {
    color: $text-muted;
    margin-top: 1;
}
"""
