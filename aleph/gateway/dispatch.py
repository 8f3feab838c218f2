"""Method registry: which methods exist, who may call them, what params they take.

Every subsystem registers its methods here (``registry.add("session.send",
handler, params=SendParams)``). A handler takes a :class:`CallContext` and
its params, structured into the method's attrs class by the strict converter,
and returns a JSON-serialisable result or raises an
:class:`~aleph.protocol.errors.RpcError`.

A plain ``def`` handler runs inline in the connection's reader: it must not
block, and it is the fast path (``system.ping``). An ``async def`` handler
runs in its own task in the connection's nursery, so a slow call never holds
up the reader (or the heartbeat pongs that the reader lets through).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
import cattrs

from aleph.protocol.convert import error_lines, make_converter
from aleph.protocol.errors import Forbidden, InvalidParams, MethodNotFound, NotAuthenticated
from aleph.security.tokens import Principal, Role

if TYPE_CHECKING:
    from aleph.gateway.client import Client
    from aleph.gateway.server import Gateway

__all__ = ["CallContext", "Method", "MethodRegistry", "structure_params"]

ANY_ROLE: frozenset[Role] = frozenset(("owner", "guest"))
_converter = make_converter()


@attrs.define(eq=False)
class CallContext:
    """What a handler knows about the call it is answering.

    One per connected client, made when it connects (the gateway keeps it);
    handlers must not change it.
    """

    gateway: Gateway
    client: Client

    @property
    def principal(self) -> Principal:
        """The caller; only public methods can be reached without one."""
        if self.client.principal is None:
            raise NotAuthenticated()
        return self.client.principal


@attrs.frozen
class Method:
    name: str
    handler: Callable[..., Any]
    params: type | None
    roles: frozenset[Role]
    public: bool  # callable before authentication
    is_async: bool


def structure_params(cls: type | None, params: dict[str, Any] | list[Any] | None) -> Any:
    """Params as the method's attrs class; InvalidParams with readable lines otherwise."""
    if cls is None:
        if params:
            raise InvalidParams("this method takes no params")
        return None
    if params is None:
        params = {}
    if isinstance(params, list):
        names = [field.name for field in attrs.fields(cls)]
        if len(params) > len(names):
            raise InvalidParams(f"at most {len(names)} positional params", {"errors": []})
        params = dict(zip(names, params, strict=False))
    try:
        return _converter.structure(params, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        lines = error_lines(exc) if isinstance(exc, cattrs.BaseValidationError) else [str(exc)]
        raise InvalidParams("invalid params: " + "; ".join(lines), {"errors": lines}) from None


@attrs.define(eq=False)
class MethodRegistry:
    _methods: dict[str, Method] = attrs.field(factory=dict, init=False)

    def add(
        self,
        name: str,
        handler: Callable[..., Any],
        *,
        params: type | None = None,
        roles: Iterable[Role] = ANY_ROLE,
        public: bool = False,
    ) -> None:
        if name in self._methods:
            raise ValueError(f"method {name!r} is registered twice")
        is_async = inspect.iscoroutinefunction(handler)
        self._methods[name] = Method(name, handler, params, frozenset(roles), public, is_async)

    def names(self) -> list[str]:
        return sorted(self._methods)

    def resolve(self, name: str, principal: Principal | None) -> Method:
        """The method, if this caller may call it; the matching RpcError otherwise."""
        method = self._methods.get(name)
        if method is None:
            raise MethodNotFound(f"method not found: {name[:100]}")
        if principal is None:
            if not method.public:
                raise NotAuthenticated("authenticate with auth.login first")
        elif principal.role not in method.roles:
            raise Forbidden(f"{name} is not allowed for role {principal.role}")
        return method
