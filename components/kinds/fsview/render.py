"""A FilesystemViewSpec's files: a drop-in per service, and the overlay's mount unit."""

from __future__ import annotations

from ...render import SYSTEMD_DIR, render
from .expect import directives, mount_unit, overlay_dirs, overlay_options, unit_directives
from .spec import FilesystemViewSpec


def dropin_path(spec: FilesystemViewSpec, service: str) -> str:
    return f"{SYSTEMD_DIR}/{service}.d/ringzero-fsview-{spec.name}.conf"


def render_fsview(spec: FilesystemViewSpec) -> dict[str, str]:
    files = {dropin_path(spec, svc): render("etc/systemd/system/sandbox-dropin.conf.j2",
                                            owner=f"FilesystemView {spec.name}", service=svc,
                                            unit=unit_directives(spec), directives=directives(spec))
             for svc in spec.services}
    if spec.overlay is not None:
        d = overlay_dirs(spec)
        # RuntimeDirectory= lists the root first: systemd removes it, and all under it, on unmount
        runtime = [d.runtime] + [f"{d.runtime}/{sub}" for sub in ("upper", "work", "merged")]
        files[f"{SYSTEMD_DIR}/{mount_unit(spec)}"] = render(
            "etc/systemd/system/fsview-overlay.mount.j2", spec=spec, dirs=d, options=overlay_options(spec),
            runtime=runtime)
    return files
