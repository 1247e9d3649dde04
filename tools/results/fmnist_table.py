"""Prints the Markdown rows of docs/RESULTS.md from the eval JSON files of fmnist_memory_bank.sh:
    /usr/bin/python3 tools/results/fmnist_table.py OUT_DIR [OUT_DIR ...]   (one column of AUROC per folder)"""
import json
import os
import sys

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
dirs = sys.argv[1:]
means = [[] for _ in dirs]
for c in range(10):
    cells = []
    for i, d in enumerate(dirs):
        p = os.path.join(d, f"{c}.json")
        if os.path.exists(p):
            a = json.load(open(p))["image_auroc"] * 100
            means[i].append(a)
            cells.append(f"{a:.1f}")
        else:
            cells.append("not measured")
    print(f"| {c} {NAMES[c]} | " + " | ".join(cells) + " |")
print("| **mean** | " + " | ".join(f"**{sum(m) / len(m):.1f}**" + ("" if len(m) == 10 else f" ({len(m)} classes)") if m else "not measured" for m in means) + " |")
