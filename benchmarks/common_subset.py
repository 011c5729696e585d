"""Summarise a benchmark JSON over the images every method finished (for partial runs).

    python benchmarks/common_subset.py benchmarks/results/bsd68_gray.json

Prints a Markdown table: per sigma, the images all listed methods completed,
and each method's mean PSNR / SSIM / seconds per image over exactly those.
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def common_table(report: dict) -> str:
    by_sigma: dict[float, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for r in report["records"]:
        by_sigma[r["sigma"]][r["method"]][r["image"]] = r
    lines = ["| sigma | images | method | PSNR (dB) | SSIM | s / image |", "|---:|---:|---|---:|---:|---:|"]
    for sigma in sorted(by_sigma):
        methods = by_sigma[sigma]
        common = set.intersection(*(set(m) for m in methods.values()))
        for name, recs in methods.items():
            rs = [recs[i] for i in sorted(common)]
            if not rs:
                continue
            lines.append(
                f"| {sigma:g} | {len(rs)} | {name} | {np.mean([r['psnr'] for r in rs]):.2f} | "
                f"{np.mean([r['ssim'] for r in rs]):.4f} | {np.mean([r['seconds'] for r in rs]):.2f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(common_table(json.loads(Path(sys.argv[1]).read_text())))
