"""After `sam build`: make the build what Lambda should run.

1. Drop what the python3.12 runtime already provides (boto3, botocore, s3transfer; the
   X-Ray SDK pulls botocore in) and the Genesys SDK's `apis/` package, which the lazy
   loader never imports (it calls ApiClient directly): ~50 MB of the layer.
2. Compile .pyc for the runtime's Python with unchecked-hash invalidation: a zip keeps
   mtimes at 2 s resolution, so timestamp-checked .pyc could look stale on Lambda's
   read-only /opt and be recompiled in memory on every cold start.
3. Fail if a function plus its layer passes Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import compileall
import py_compile
import shutil
import sys
from pathlib import Path

BUILD = Path(".aws-sam/build")
LAYER = BUILD / "SharedLayer" / "python"
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
NEVER_IMPORTED = ("PureCloudPlatformClientV2/apis",)
LIMIT_BYTES = 250 * 1024 * 1024


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> int:
    if sys.version_info[:2] != (3, 12):
        print(f"warning: compiling with Python {sys.version_info[:2]}, the runtime is 3.12")
    if not LAYER.is_dir():
        print(f"{LAYER} is missing: run sam build first", file=sys.stderr)
        return 1
    for entry in list(LAYER.iterdir()):
        name = entry.name.split("-")[0]
        if name in PROVIDED_BY_RUNTIME:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for relative in NEVER_IMPORTED:
        shutil.rmtree(LAYER / relative, ignore_errors=True)
    ok = compileall.compile_dir(
        str(BUILD),
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    layer_bytes = size(LAYER.parent)
    worst = 0
    for function in BUILD.iterdir():
        if function.is_dir() and function.name != "SharedLayer":
            total = size(function) + layer_bytes
            worst = max(worst, total)
    print(f"layer {layer_bytes / 2**20:.0f} MB; largest function + layer {worst / 2**20:.0f} MB")
    if worst > LIMIT_BYTES:
        print("over Lambda's 250 MB unzipped limit", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
