#!/usr/bin/env bash
# Re-check of the shipped models' training length on the validation split (NAIP 2009, never
# trained on), with every version of the weights the repository's history holds.
# Run from the repository root: bash results/training/validation_recheck/run.sh
# Needs the validation scene in the data cache:
#   edgespacecom data fetch "eo:revisit/naip/naip_*_2009*.tif"  (add --mirror DIR offline)
set -euo pipefail
here=results/training/validation_recheck
for commit in 4e665de fec630d 2e35ea1; do
  mkdir -p "$here/weights/$commit"
  for f in $(git ls-tree --name-only "$commit" dlrc_agents/weights/); do
    git show "$commit:$f" > "$here/weights/$commit/$(basename "$f")"
  done
done
.venv/bin/edgespacecom run "$here/scenario.yaml" --out "$here"
