# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for snapsetctl(8). Commands and options come from snapsetctl's own --help, so
# they cannot drift from the program; snapshot and set ids, the set in creation and method names
# come from the daemon, when it answers.

_snapsetctl_run() {
        local socket=$1
        shift
        snapsetctl ${socket:+--socket="$socket"} --timeout=3 "$@" 2>/dev/null
}

# The long options of snapsetctl's help (of a command's, with one): the option lines only.
_snapsetctl_options() {
        if [[ $1 ]]; then snapsetctl help "$1"; else snapsetctl --help; fi 2>/dev/null |
                sed -n 's/^ *\(-[a-zA-Z] \)\{0,1\}\(--[a-z-]*=\{0,1\}\).*/\2/p' | sort -u
}

# The ids of the sets (set), of the snapshots (snapshot), or of both (any).
_snapsetctl_ids() {
        local socket=$1 kind=$2 all sets
        all=$(_snapsetctl_run "$socket" --json list | grep -o '"id": *"[0-9a-fA-F-]*"' | grep -o '[0-9a-fA-F-]\{36\}')
        # A set's own id: the first one of its line, before any nested object (its snapshots).
        sets=$(_snapsetctl_run "$socket" --json list --sets | sed -n 's/^[^{]*{[^{]*"id": *"\([0-9a-fA-F-]\{36\}\)".*/\1/p')
        case $kind in
        set) printf '%s\n' "$sets" ;;
        snapshot) grep -vxF -f <(printf '%s\n' "$sets") <<<"$all" ;;
        *) printf '%s\n' "$all" ;;
        esac
}

# The names of the set definitions (snapset-sets(5)).
_snapsetctl_definitions() {
        _snapsetctl_run "$1" --json sets | grep -o '"name": *"[^"]*"' | cut -d'"' -f4
}

_snapsetctl() {
        local cur prev words cword
        _init_completion -s || return

        local socket= verb= verb_at=0 i
        for ((i = 1; i < cword; i++)); do
                case ${words[i]} in
                --socket=*) socket=${words[i]#--socket=} ;;
                --socket) socket=${words[i + 1]} ;;
                -*) ;;
                *)
                        if [[ ${words[i - 1]} != --socket && ${words[i - 1]} != --timeout ]]; then
                                verb=${words[i]} verb_at=$i
                                break
                        fi
                        ;;
                esac
        done

        case $prev in
        --socket) _filedir; return ;;
        --timeout) return ;;
        --path) _filedir -d; return ;;
        --volume) COMPREPLY=($(compgen -W "$(lsblk -rpno NAME 2>/dev/null)" -- "$cur")); _filedir -d; return ;;
        --set) COMPREPLY=($(compgen -W "$(_snapsetctl_ids "$socket" set)" -- "$cur")); return ;;
        --definition) COMPREPLY=($(compgen -W "$(_snapsetctl_definitions "$socket")" -- "$cur")); return ;;
        --provider) COMPREPLY=($(compgen -W "$(_snapsetctl_run "$socket" --json providers | grep -o '"name": *"[^"]*"' | cut -d'"' -f4)" -- "$cur")); return ;;
        esac

        if [[ -z $verb ]]; then
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "$(_snapsetctl_options) -h" -- "$cur"))
                        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
                else
                        COMPREPLY=($(compgen -W "$(snapsetctl --help 2>/dev/null | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')" -- "$cur"))
                fi
                return
        fi

        # exec: after "--", a command of its own.
        if [[ $verb == exec ]]; then
                for ((i = verb_at + 1; i < cword; i++)); do
                        if [[ ${words[i]} == -- ]]; then
                                _command_offset $((i + 1))
                                return
                        fi
                done
        fi

        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$(_snapsetctl_options "$verb")" -- "$cur"))
                [[ ${COMPREPLY-} == *= ]] && compopt -o nospace
                return
        fi

        case $verb in
        show | delete) COMPREPLY=($(compgen -W "$(_snapsetctl_ids "$socket" any)" -- "$cur")) ;;
        expose | unexpose | revert) COMPREPLY=($(compgen -W "$(_snapsetctl_ids "$socket" snapshot)" -- "$cur")) ;;
        break) COMPREPLY=($(compgen -W "$(_snapsetctl_ids "$socket" set)" -- "$cur")) ;;
        prune | check) COMPREPLY=($(compgen -W "$(_snapsetctl_definitions "$socket")" -- "$cur")) ;;
        abort) COMPREPLY=($(compgen -W "$(_snapsetctl_run "$socket" --json status | grep -o '"setInProgress": *{"id": *"[^"]*"' | grep -o '[0-9a-fA-F-]\{36\}')" -- "$cur")) ;;
        create | exec)
                COMPREPLY=($(compgen -W "$(lsblk -rpno NAME 2>/dev/null)" -- "$cur"))
                _filedir -d
                ;;
        help) COMPREPLY=($(compgen -W "$(snapsetctl --help 2>/dev/null | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')" -- "$cur")) ;;
        call)
                if ((cword == verb_at + 1)); then
                        local methods
                        methods=$(_snapsetctl_run "$socket" call org.varlink.service.GetInterfaceDescription '{"interface": "io.snapset.Manager"}' |
                                grep -o 'method [A-Za-z]*' | awk '{ print "io.snapset.Manager." $2 }')
                        COMPREPLY=($(compgen -W "$methods org.varlink.service.GetInfo org.varlink.service.GetInterfaceDescription" -- "$cur"))
                fi
                ;;
        esac
}
complete -F _snapsetctl snapsetctl
