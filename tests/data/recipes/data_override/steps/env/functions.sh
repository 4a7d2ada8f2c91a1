# child's helper functions (shadows base/steps/env/functions.sh)
function log { echo "[custom] $*"; }
