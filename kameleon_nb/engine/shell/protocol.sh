# shellcheck shell=bash
# The bash side of the context shells' protocol (kameleon_nb.engine.shell). Evaluated
# by every context shell (and every end of a pipe) once, at start-up, after the
# context environment is set; never run on its own.
#
# Placeholders, filled by protocol.shell_functions(): @P@ is the table of protected
# names (bash's read-only and dynamic variables, and those that would break the
# protocol), @U@ their list (for unset), @ALL@ expands to every variable name.
#
# Set by the caller before this file: __knb_nonce (context shells), __knb_null
# (/dev/null, or a file of ours in a tree with no /dev yet), __knb_dump.
#
# Variables are saved in two files: $__knb_dump holds the exported variables (allexport
# exports every assignment of a command) as "declare -px" prints them, so the shell can
# simply source it; $__knb_dump.arrays holds the arrays, which include bash's own and go
# through __knb_arrays. Files are overwritten in place (1<>, no truncation: ext4 makes a
# truncation cost more than the write), so each ends with "return 0" and may have stale
# bytes after it.
#
# shellcheck disable=SC2034  # the variables set here are read by the Python side's lines
# shellcheck disable=SC1090  # the files sourced are the saved variables
# shellcheck disable=SC2154  # __knb_nonce, __knb_null, __knb_dump, __knb_wd: set by the caller
# shellcheck disable=SC2016  # single-quoted code is meant to expand later, where it runs
# shellcheck disable=SC1007  # "a= b=": empty assignments, on purpose

# shellcheck disable=SC2190  # @P@ becomes [name]=1 entries
declare -A __knb_prot=(@P@)
__knb_go() {
  builtin export -n __knb_c 2>"$__knb_null"
  __knb_id=$1 __knb_mode=$2
  builtin printf '\n__KNB_%s_%s_S__\n' "$__knb_nonce" "$1"
  [[ $2 == int ]] || builtin set -o pipefail -o allexport
}
__knb_save() {
  { builtin declare -px; builtin echo 'return 0'; } 1<>"$__knb_dump" 2>"$__knb_null"
  { builtin declare -pa; builtin declare -pA; builtin echo 'return 0'
  } 1<>"$__knb_dump.arrays" 2>"$__knb_null"
}
__knb_prompt() {
  builtin set +o allexport +o pipefail
  builtin printf '\n__KNB_%s_%s_%s__\n' "$__knb_nonce" "$__knb_id" "$1"
  __knb_id=0 __knb_c=
  if ! [[ . -ef $__knb_wd ]]; then
    __knb_p=${PWD-} __knb_o=${OLDPWD-}
    # shellcheck disable=SC2164  # nothing to do if it is gone: the command will say so
    builtin cd -- "$__knb_wd" 2>"$__knb_null"
    PWD=$__knb_p OLDPWD=$__knb_o
  fi
  # Which saved variables to load now (at top level, in PROMPT_COMMAND), if any; "same":
  # a command that could not assign a variable ran in place, the saved ones still hold.
  case $__knb_mode in
    sub) __knb_load=("$__knb_dump") ;;
    subu) __knb_unset_all; __knb_load=("$__knb_dump") ;;
    reset) __knb_unset_all; __knb_load=("$__knb_dump.init") ;;
    restore) __knb_unset_all; __knb_load=("$__knb_dump.init" "$__knb_dump") ;;
    same) __knb_mode=; __knb_load=() ;;
    *) __knb_mode=; __knb_load=(); __knb_save ;;
  esac
}
__knb_snapshot() {
  { builtin declare -px; builtin echo 'return 0'; } >|"$__knb_dump.init"
  { builtin declare -pa; builtin declare -pA; builtin echo 'return 0'
  } >|"$__knb_dump.init.arrays"
}
__knb_unset_all() {
  # shellcheck disable=SC2043  # @ALL@ becomes many words
  for __knb_v in @ALL@; do
    [[ -n ${__knb_prot[$__knb_v]-} || $__knb_v == __knb* ]] \
      || builtin unset -v "$__knb_v" 2>"$__knb_null"
  done
}
__knb_arrays() {
  __knb_l=()
  builtin mapfile -t __knb_l < "$1.arrays" 2>"$__knb_null"
  __knb_n=0
  for __knb_v in "${__knb_l[@]}"; do
    [[ $__knb_v == 'return 0' ]] && break
    if [[ $__knb_v == 'declare -'* ]]; then
      __knb_r=${__knb_v#* }
      __knb_r=${__knb_r#* }
      __knb_k=${__knb_r%%=*}
      if [[ -n ${__knb_prot[$__knb_k]-} || $__knb_k == __knb* ]]; then
        # Keep the syntax (a value may span lines) but assign a scratch variable.
        if [[ $__knb_r != *=* ]]; then
          __knb_l[__knb_n]=:
        else
          __knb_f=${__knb_v#declare -}
          if [[ ${__knb_f%% *} == *A* ]]; then
            __knb_l[__knb_n]="declare -A __knb_zA=${__knb_r#*=}"
          else
            __knb_l[__knb_n]="declare -a __knb_z=${__knb_r#*=}"
          fi
        fi
      fi
    fi
    __knb_n=$((__knb_n + 1))
  done
  builtin printf -v __knb_s '%s\n' "${__knb_l[@]:0:__knb_n}"
  __knb_l=() __knb_v= __knb_r= __knb_k= __knb_f=
}
__knb_vars() {
  __knb_l=()
  # shellcheck disable=SC2043  # @ALL@ becomes many words
  for __knb_v in @ALL@; do
    [[ -n ${__knb_prot[$__knb_v]-} || $__knb_v == __knb* ]] || __knb_l+=("$__knb_v")
  done
  [[ ${#__knb_l[@]} -eq 0 ]] || builtin declare -p -- "${__knb_l[@]}"
  __knb_l=() __knb_v=
}
__knb_trap='{ builtin set +xveu; } 2>"$__knb_null"
builtin set -- "$__knb_dump" "$__knb_null"
builtin unset -v @U@ "${!__knb@}" 2>"$2"
{ builtin declare -px; builtin echo "return 0"; } 1<>"$1" 2>"$2"
{ builtin declare -pa; builtin declare -pA; builtin echo "return 0"; } 1<>"$1.arrays" 2>"$2"'

# Run by PROMPT_COMMAND at top level (a function would make the loaded declarations
# local): after a subshell, its variables replace those of the persistent shell; a
# reset or restore starts again from the snapshot of the initial environment.
__knb_prompt_command='__knb_prompt $?; [[ -z $__knb_mode ]] || { builtin set -o allexport; for __knb_lf in "${__knb_load[@]}"; do builtin source "$__knb_lf" 2>"$__knb_null"; __knb_arrays "$__knb_lf"; builtin eval "$__knb_s" 2>"$__knb_null"; done; builtin set +o allexport; builtin unset -v __knb_z __knb_zA; __knb_s= __knb_load=(); [[ $__knb_mode == sub ]] || __knb_save; __knb_mode=; }'
