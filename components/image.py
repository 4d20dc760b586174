"""BaseImage: a guest image uploaded into a host's storage pool, the backing file of VMs."""

from __future__ import annotations

import pulumi
import pulumi_libvirt as libvirt

from .host import HypervisorHost
from .spec import BaseImageSpec


class BaseImage(pulumi.ComponentResource):
    """Example::

    image = BaseImage("debian", BaseImageSpec("debian-12", "local", "/srv/base.qcow2"), host=local)
    """

    def __init__(
        self, name: str, spec: BaseImageSpec, host: HypervisorHost,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("ringzero:index:BaseImage", name, None, opts)
        self.spec = spec
        self.host = host
        self.volume = libvirt.Volume(
            f"{name}-volume",
            name=spec.volume_name,
            pool=host.spec.pool,
            source=spec.source,
            format=spec.format,
            opts=pulumi.ResourceOptions(parent=self, provider=host.provider),
        )
        self.volume_id = self.volume.id
        self.register_outputs({"volumeId": self.volume_id, "volumeName": spec.volume_name})
