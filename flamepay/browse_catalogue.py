"""What can be paid: the enabled gateways and their enabled packages (all, for admins)."""

from __future__ import annotations

import attrs

from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.ports import UnitOfWork


@attrs.frozen
class Catalogue:
    gateways: tuple[Gateway, ...]
    packages: tuple[Package, ...]

    def packages_of(self, way_code: str) -> tuple[Package, ...]:
        return tuple(p for p in self.packages if p.way_code == way_code)


def browse_catalogue(core: Core, include_disabled: bool = False) -> Catalogue:
    def body(uow: UnitOfWork) -> Catalogue:
        gateways = [g for g in uow.catalogue.gateways() if include_disabled or g.enabled]
        on = {g.way_code for g in gateways}
        packages = [
            p
            for p in uow.catalogue.packages()
            if p.way_code in on and (include_disabled or p.enabled)
        ]
        return Catalogue(tuple(gateways), tuple(packages))

    return core.transaction(body)
