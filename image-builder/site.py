"""``bootseed-image site``: a static landing page for an image catalog.

Reads a mirror written by ``bootseed-image catalog`` (``streams/v1/index.json``,
the products files and each build's manifest) and writes ``index.html`` and
``style.css``: every build, newest first, with its files, sizes, checksums,
kernel and package versions, and how to boot it and give it a seed. No
JavaScript; every link is relative, so the page works from ``file://`` and
from any static server (put it at the mirror root: ``--out`` = ``--catalog``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bootseed.image_builder.catalog import MANIFEST_FTYPE, STREAMS_DIR, CatalogError
from bootseed.image_builder.ova import OVF_PROPERTIES

STYLESHEET = "style.css"
# Packages worth a line of their own; the rest are in the full list.
KEY_PACKAGES = ("bootseed", "bootseed-initramfs", "systemd", "openssh-server", "grub-pc")
FORMAT_NOTES = {
    "raw": "raw disk image (sparse)",
    "qcow2": "QEMU copy-on-write image",
    "vmdk": "VMDK, streamOptimized",
    "ova": "OVA: OVF descriptor, VMDK and SHA256 manifest",
    MANIFEST_FTYPE: "build manifest (JSON)",
}


FIRMWARE_TEXT = {
    "bios": "BIOS",
    "uefi": "UEFI (no Secure Boot)",
    "both": "BIOS or UEFI (no Secure Boot)",
}


@dataclass(frozen=True)
class SiteFile:
    ftype: str
    href: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SiteBuild:
    product: str
    release: str
    arch: str
    version: str
    built: str
    name: str
    kernel: str
    packages: dict[str, str]
    bootseed_debs: list[str]
    files: list[SiteFile]
    # manifest.FIRMWARES; catalogs from before UEFI images say nothing: BIOS.
    firmware: str = "bios"


def read_builds(catalog: Path, out: Path) -> list[SiteBuild]:
    """Every version in the catalog, newest build first; hrefs relative to ``out``."""
    index_path = catalog / STREAMS_DIR / "index.json"
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError) as exc:
        raise CatalogError(f"{index_path}: {exc}") from None
    builds = []
    for entry in index.get("index", {}).values():
        products = json.loads((catalog / entry["path"]).read_text())
        for product, data in products["products"].items():
            for version, info in data["versions"].items():
                builds.append(_build(catalog, out, product, data, version, info))
    return sorted(builds, key=lambda b: (b.built, b.version), reverse=True)


def _build(catalog: Path, out: Path, product: str, data: dict[str, Any], version: str,
           info: dict[str, Any]) -> SiteBuild:
    files = []
    build_manifest: dict[str, Any] = {}
    for ftype, item in sorted(info["items"].items(), key=lambda kv: _format_order(kv[0])):
        target = catalog / item["path"]
        files.append(SiteFile(ftype=ftype, href=_href(target, out), name=Path(item["path"]).name,
                              size=int(item["size"]), sha256=item["sha256"]))
        if ftype == MANIFEST_FTYPE:
            build_manifest = json.loads(target.read_text())
    return SiteBuild(product=product, release=data["release"], arch=data["arch"],
                     version=version, built=info.get("built", ""),
                     name=info.get("build_name", ""), kernel=info.get("kernel_version", ""),
                     packages=build_manifest.get("packages", {}),
                     bootseed_debs=build_manifest.get("bootseed_debs", []), files=files,
                     firmware=info.get("firmware", "bios"))


def _format_order(ftype: str) -> int:
    order = list(FORMAT_NOTES)
    return order.index(ftype) if ftype in order else len(order)


def _href(target: Path, out: Path) -> str:
    # quote() also escapes ":", so no segment can read as a URL scheme.
    return quote(os.path.relpath(target.resolve(), out.resolve()).replace(os.sep, "/"))


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value, unit = size / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


def write_site(catalog: Path, out: Path, now: datetime | None = None) -> list[Path]:
    """Write ``index.html`` and ``style.css`` into ``out``; return their paths."""
    builds = read_builds(catalog, out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    index_href = _href(catalog / STREAMS_DIR / "index.json", out)
    page = render(builds, stamp, index_href)
    written = []
    for name, text in (("index.html", page), (STYLESHEET, CSS)):
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.rename(path)
        written.append(path)
    return written


def render(builds: list[SiteBuild], stamp: str, index_href: str) -> str:
    latest = builds[0] if builds else None
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>bootseed images</title>",
        f'<link rel="stylesheet" href="{STYLESHEET}">',
        "</head>",
        "<body>",
        "<header>",
        "<h1>bootseed images</h1>",
        "<p>Debian disk images with bootseed, the first-boot customizer, inside. "
        f"{len(builds)} build{'s' if len(builds) != 1 else ''}, newest first. "
        f"Page made {escape(stamp)}.</p>",
        f'<p>Machine-readable catalog (simplestreams): <a href="{escape(index_href)}">'
        "streams/v1/index.json</a>.</p>",
        "</header>",
        "<main>",
        '<section id="builds">',
        "<h2>Builds</h2>",
    ]
    if not builds:
        parts.append("<p>The catalog has no builds.</p>")
    for number, build in enumerate(builds):
        parts.extend(_build_section(build, latest=number == 0))
    parts.append("</section>")
    parts.extend(_usage_sections(latest))
    parts.extend(["</main>", "</body>", "</html>", ""])
    return "\n".join(parts)


def _build_section(build: SiteBuild, latest: bool) -> list[str]:
    anchor = f"{build.release}-{build.arch}-{build.version}"
    title = f"Debian {build.release} {build.arch}, version {build.version}"
    badge = ' <span class="latest">latest</span>' if latest else ""
    parts = [
        f'<article class="build" id="{escape(anchor)}">',
        f"<h3>{escape(title)}{badge}</h3>",
        "<dl>",
        f"<dt>Built</dt><dd>{escape(build.built)}</dd>",
        f"<dt>Product</dt><dd><code>{escape(build.product)}</code></dd>",
        f"<dt>Kernel</dt><dd>{escape(build.kernel)}</dd>",
        f"<dt>Firmware</dt><dd>{escape(FIRMWARE_TEXT.get(build.firmware, build.firmware))}</dd>",
    ]
    if build.bootseed_debs:
        parts.append("<dt>bootseed packages</dt><dd>"
                     f"{escape(', '.join(build.bootseed_debs))}</dd>")
    for name in KEY_PACKAGES:
        if name in build.packages:
            parts.append(f"<dt>{escape(name)}</dt><dd>{escape(build.packages[name])}</dd>")
    parts += [
        "</dl>",
        "<table>",
        f"<caption>Files of {escape(build.name or title)}</caption>",
        '<thead><tr><th scope="col">Format</th><th scope="col">File</th>'
        '<th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>',
        "<tbody>",
    ]
    for file in build.files:
        note = FORMAT_NOTES.get(file.ftype, file.ftype)
        parts.append(
            f'<tr><td title="{escape(note)}">{escape(file.ftype)}</td>'
            f'<td><a href="{escape(file.href)}">{escape(file.name)}</a></td>'
            f'<td>{escape(human_size(file.size))}</td>'
            f'<td><code class="sha256">{escape(file.sha256)}</code></td></tr>')
    parts += ["</tbody>", "</table>"]
    if build.packages:
        parts.append(f"<details><summary>All {len(build.packages)} packages</summary><ul>")
        parts.extend(f"<li>{escape(name)} {escape(version)}</li>"
                     for name, version in sorted(build.packages.items()))
        parts.append("</ul></details>")
    parts.append("</article>")
    return parts


def _pick(build: SiteBuild | None, *ftypes: str) -> str:
    if build is not None:
        for ftype in ftypes:
            for file in build.files:
                if file.ftype == ftype:
                    return file.name
    return f"IMAGE.{ftypes[0]}"


def _usage_sections(latest: SiteBuild | None) -> list[str]:
    disk = _pick(latest, "qcow2", "raw")
    disk_format = "qcow2" if disk.endswith(".qcow2") else "raw"
    ova_name = _pick(latest, "ova")
    props = "".join(f"<li><code>{escape(p.key)}</code>: {escape(p.description)}</li>"
                    for p in OVF_PROPERTIES)
    return [
        '<section id="verify">',
        "<h2>Check a download</h2>",
        "<p>Compare with the SHA-256 column above:</p>",
        f"<pre><code>sha256sum {escape(disk)}</code></pre>",
        "<p>or mirror with checksum verification using the simplestreams tools:</p>",
        "<pre><code>sstream-mirror https://MIRROR/streams/v1/index.json ./mirror "
        "release=bookworm arch=amd64</code></pre>",
        "</section>",
        '<section id="boot">',
        "<h2>Boot it</h2>",
        "<h3>QEMU</h3>",
        "<p>Work on an overlay so the downloaded image stays pristine:</p>",
        f"<pre><code>qemu-img create -f qcow2 -F {disk_format} -b {escape(disk)} vm.qcow2\n"
        "qemu-system-x86_64 -machine q35,accel=kvm -m 1024 -nographic \\\n"
        "  -drive file=vm.qcow2,if=virtio \\\n"
        "  -drive file=seed.iso,media=cdrom \\\n"
        "  -nic user,model=virtio-net-pci</code></pre>",
        "<p>A UEFI-only image (Firmware above) boots with OVMF (Debian package "
        "<code>ovmf</code>): copy its variable store for the VM once with "
        "<code>cp /usr/share/OVMF/OVMF_VARS.fd vm-vars.fd</code> and add to the "
        "command:</p>",
        "<pre><code>  -drive if=pflash,format=raw,readonly=on,"
        "file=/usr/share/OVMF/OVMF_CODE.fd \\\n"
        "  -drive if=pflash,format=raw,file=vm-vars.fd</code></pre>",
        "<h3>virt-install (libvirt)</h3>",
        f"<pre><code>virt-install --name bootseed --memory 1024 --vcpus 1 --import \\\n"
        f"  --disk path={escape(disk)},format={disk_format},bus=virtio \\\n"
        "  --disk path=seed.iso,device=cdrom \\\n"
        "  --os-variant debian12 --network default --graphics none</code></pre>",
        "<h3>VMware, VirtualBox and other OVF importers</h3>",
        f"<p>Import <code>{escape(ova_name)}</code>; fill in its properties (below).</p>",
        "</section>",
        '<section id="seed">',
        "<h2>Give it a seed</h2>",
        "<p>bootseed reads the instance's meta-data and user-data from the first seed it "
        "finds.</p>",
        "<h3>NoCloud disc</h3>",
        "<p>Put <code>meta-data</code> and <code>user-data</code> in a directory and make a "
        "disc labelled <code>cidata</code> from it:</p>",
        "<pre><code>bootseed-image seed-iso cidata ./seed -o seed.iso</code></pre>",
        "<h3>Kernel command line</h3>",
        "<p>Serve the same files over HTTP and add to the kernel command line:</p>",
        "<pre><code>ds=nocloud;s=http://10.0.2.2:8000/</code></pre>",
        "<h3>OVF properties</h3>",
        "<p>The OVA declares these user-configurable properties; the platform hands them "
        "to the guest as <code>ovf-env.xml</code> on a CD (ISO transport):</p>",
        f"<ul>{props}</ul>",
        "<p>Or make that CD yourself: <code>bootseed-image seed-iso ovf ovf-env.xml -o "
        "ovf.iso</code>.</p>",
        "</section>",
    ]


CSS = """\
:root { --ink: #1d2430; --muted: #5a6473; --line: #d6dbe3; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1.5rem; color: var(--ink);
       font: 16px/1.5 system-ui, sans-serif; background: #fbfcfd; }
header { border-bottom: 2px solid var(--line); margin-bottom: 1.5rem; }
h1 { margin: 0 0 .5rem; font-size: 2rem; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid var(--line); }
h3 { margin-bottom: .5rem; }
a { color: var(--accent); }
.build { border: 1px solid var(--line); border-radius: 6px; padding: 0 1rem 1rem;
         margin: 1rem 0; background: #fff; }
.latest { font-size: .8rem; background: var(--accent); color: #fff; border-radius: 3px;
          padding: .1rem .4rem; vertical-align: middle; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: var(--muted); }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
caption { text-align: left; color: var(--muted); padding-bottom: .3rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line);
         vertical-align: top; }
code.sha256 { font-size: .75rem; word-break: break-all; }
pre { background: #f1f3f6; padding: .75rem; overflow-x: auto; border-radius: 4px; }
details { margin-top: .5rem; }
details ul { columns: 3 16rem; font-size: .85rem; }
"""
