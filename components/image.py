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
            # a libvirt volume's name is its identity in the pool: a replacement must delete the
            # old one first (created first, the new one is refused on its name, or, when libvirt
            # had lost the old one, the old one's delete by path removes the new one)
            opts=pulumi.ResourceOptions.merge(host.placed(self), pulumi.ResourceOptions(delete_before_replace=True)),
        )
        self.volume_id = self.volume.id
        self.register_outputs({"volumeId": self.volume_id, "volumeName": spec.volume_name})
