# Helper functions available in every context
function fail {
    echo "$@" 1>&2
    false
}
export -f fail
