function log { echo "[base] $*"; }
