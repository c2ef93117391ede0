"""torchvision in this environment: installed and working, or cleanly absent; never installed
but broken (PyPI's build beside a CPU torch fails with "operator torchvision::nms does not
exist"). Prints ``ok <version>`` or ``absent``; exits 1 with the reason otherwise.

    python tests/torchvision_check.py

Run by tests/test_lock.py in the project's environment and by tests/test_image_build.py inside
the image (it imports nothing from the repository).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys


def main() -> int:
    try:
        dist = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is None and importlib.util.find_spec("torchvision") is None:
        print("absent")
        return 0
    try:
        import torch
        import torchvision
        import torchvision.ops

        boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.1, 0.1, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0]])
        keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    except Exception as exc:  # the broken state this check exists for
        print(f"torchvision {dist} is installed but broken beside torch: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if keep.tolist() != [0, 2]:
        print(f"torchvision.ops.nms kept {keep.tolist()}, expected [0, 2]", file=sys.stderr)
        return 1
    print(f"ok {torchvision.__version__} (torch {torch.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
