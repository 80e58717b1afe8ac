"""An admin adds a gateway (a pay method by its way code) or changes its title or switch."""

from __future__ import annotations

from flamepay.admin import require_admin
from flamepay.catalogue import Gateway, parse_title, parse_way_code
from flamepay.context import Core
from flamepay.ports import UnitOfWork


def configure_gateway(
    core: Core, admin_id: int, way_code: str, title: str, enabled: bool
) -> Gateway:
    require_admin(core, admin_id, "gateway", way_code)
    code = parse_way_code(way_code)
    clean_title = parse_title(title)

    def body(uow: UnitOfWork) -> Gateway:
        gateway = uow.catalogue.gateway(code) or Gateway(code, clean_title, enabled)
        gateway.title, gateway.enabled = clean_title, enabled
        uow.catalogue.save_gateway(gateway)
        core.audit(
            uow,
            f"admin:{admin_id}",
            "gateway_configured",
            f"gateway:{code}",
            title=clean_title,
            enabled=enabled,
        )
        return gateway

    return core.transaction(body)
