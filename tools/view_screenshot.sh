#!/usr/bin/env bash
# The README's picture of the view: a run's view.html opened offline in headless Chromium.
#   tools/view_screenshot.sh results/quickstart docs/view_quickstart.png
set -euo pipefail
run=$1; png=$2
edgespacecom=${EDGESPACECOM:-.venv/bin/edgespacecom}
"$edgespacecom" view "$run" --out "$run/view.html"
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,900 \
  --virtual-time-budget=10000 --screenshot="$png" "file://$(cd "$run" && pwd)/view.html" 2>/dev/null
echo "$png"
