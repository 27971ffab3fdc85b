"""Publish the asv dashboard as a self-contained site: ``asv publish``, then asv's CDN scripts and styles replaced by
the copies in ``asv_benchmarks/vendor/`` (the same versions, from the npm registry's packages), referenced
relatively, so that the site renders from ``asv preview`` or any static file server with no internet access.

    python asv_benchmarks/publish.py [--config asv_benchmarks/asv.conf.json] [any other asv publish options]

asv 0.6's ``index.html`` loads jQuery, Flot and four of its plugins, Stupid Table, JavaScript MD5 and Bootstrap from
code.jquery.com, cdnjs and jsdelivr. Where the vendored file is byte for byte the CDN's (its subresource-integrity
hash matches), the integrity attribute stays; cdnjs's minified Flot files are not in Flot's npm package, which
ships the same release unminified, and Stupid Table's 1.0.1 is not on npm, whose oldest release, 1.1.3, has the
same ``.stupidtable()`` interface. Exits non-zero when a page of the published site still loads anything from
another host.
"""

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"

# asv's CDN address -> the vendored file (under vendor/) that replaces it, with its npm package.
REPLACEMENTS = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery-3.3.1.min.js", "jquery@3.3.1 dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js":
        ("flot-0.8.3-jquery.flot.js", "flot@0.8.3 jquery.flot.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        ("flot-0.8.3-jquery.flot.time.js", "flot@0.8.3 jquery.flot.time.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        ("flot-0.8.3-jquery.flot.selection.js", "flot@0.8.3 jquery.flot.selection.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        ("flot-0.8.3-jquery.flot.categories.js", "flot@0.8.3 jquery.flot.categories.js"),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        ("flot-orderbars-1.0.0-jquery.flot.orderBars.js", "flot-orderbars@1.0.0 js/jquery.flot.orderBars.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        ("stupid-table-plugin-1.1.3-stupidtable.min.js", "stupid-table-plugin@1.1.3 stupidtable.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js":
        ("blueimp-md5-2.19.0-md5.min.js", "blueimp-md5@2.19.0 js/md5.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js":
        ("bootstrap-3.1.1.min.js", "bootstrap@3.1.1 dist/js/bootstrap.min.js"),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        ("css/bootstrap-3.1.1.min.css", "bootstrap@3.1.1 dist/css/bootstrap.min.css (and dist/fonts/)"),
}

# A tag that loads a resource: <script src=...> or <link href=...> (an <a href> is a link the reader follows).
_RESOURCE_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE)
_ADDRESS = re.compile(r"""\b(src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_INTEGRITY = re.compile(r"""\s+integrity\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_CROSSORIGIN = re.compile(r"""\s+(crossorigin|referrerpolicy)\s*=\s*["'][^"']*["']""", re.IGNORECASE)


def _sri(path, algorithm):
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, path.read_bytes()).digest()).decode()


def _local_tag(tag, address, relative):
    """``tag`` loading ``relative`` instead of ``address``; its integrity attribute kept when the vendored file
    matches it, and its cross-origin attributes dropped (the file is same-origin now)."""
    local = VENDOR / REPLACEMENTS[address][0]
    integrity = _INTEGRITY.search(tag)
    tag = _CROSSORIGIN.sub("", _INTEGRITY.sub("", tag)).replace(address, relative)
    if integrity is not None:
        algorithm = integrity.group(1).split("-", 1)[0]
        if _sri(local, algorithm) == integrity.group(1):
            tag = tag.replace(relative, f'{relative}" integrity="{integrity.group(1)}', 1)
    return tag


def external_resources(html):
    """The addresses of scripts and stylesheets ``html`` loads from another host."""
    found = []
    for tag in _RESOURCE_TAG.finditer(html):
        for _, address in _ADDRESS.findall(tag.group(0)):
            if re.match(r"^(https?:)?//", address):
                found.append(address)
    return found


def vendor_site(html_dir):
    """Copy ``vendor/`` into ``html_dir`` and point every page of the site at it. Returns the addresses still
    loaded from elsewhere (none for asv 0.6's pages)."""
    html_dir = Path(html_dir)
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True)
    left = []
    for page in sorted(html_dir.glob("*.html")):
        text = page.read_text(encoding="utf-8")

        def replace(match):
            tag = match.group(0)
            for _, address in _ADDRESS.findall(tag):
                if address in REPLACEMENTS:
                    return _local_tag(tag, address, "vendor/" + REPLACEMENTS[address][0])
            return tag

        text = _RESOURCE_TAG.sub(replace, text)
        page.write_text(text, encoding="utf-8")
        left += [f"{page.name}: {address}" for address in external_resources(text)]
    return left


def _html_dir(config):
    """The html_dir of an asv configuration file (JSON with // comments), resolved against the file's folder."""
    text = "\n".join(line for line in Path(config).read_text().splitlines() if not line.lstrip().startswith("//"))
    return (Path(config).resolve().parent / json.loads(text).get("html_dir", "html")).resolve()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(HERE / "asv.conf.json"))
    args, publish_args = parser.parse_known_args(argv)
    subprocess.run([sys.executable, "-m", "asv", "publish", "--config", args.config, *publish_args], check=True)
    html_dir = _html_dir(args.config)
    left = vendor_site(html_dir)
    if left:
        print("still loaded from another host:\n  " + "\n  ".join(left), file=sys.stderr)
        return 1
    print(f"self-contained dashboard in {html_dir} (serve it with `asv preview` or any static file server)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
