#!/usr/bin/env bash
# Two builds of the `rauha` CLI give the same answers: runs both on a corpus of command lines
# (every command and subcommand with --help, without arguments, with a bad option and stray
# words; global options before and after; option values that name commands) and prints each
# difference in stdout, stderr or exit code. No rauhad: RAUHA_SOCKET points nowhere, so
# nothing is sent anywhere; it runs in a temporary directory.
#
#   eval/bench/cli_answers.sh OLD_RAUHA NEW_RAUHA        (exit 1 if any line differs)
set -u
if [ $# -ne 2 ]; then
  echo "usage: $0 OLD_RAUHA NEW_RAUHA" >&2
  exit 2
fi
OLD=$(realpath "$1") NEW=$(realpath "$2")
export RAUHA_SOCKET=/nonexistent/rauhad.sock
unset RAUHA_HOST
T=$(mktemp -d)
subs() { "$OLD" "$@" --help 2>/dev/null | awk '/^Subcommands:/{f=1;next} f&&/^  [a-z]/{print $1} f&&/^$/{f=0}'; }
corpus=()
add() { corpus+=("$*"); }
add ""; add --help; add -h; add help; add bogus; add --bogus; add --socket; add "--socket x"
add "--socket version version"; add "--socket=version version"; add "--socket= version"
add "--timeout-connect 0 version"; add "--timeout-connect abc version"; add "version --timeout-connect 0"
add "--help version"; add "-h version"; add "version --help-all"; add "-- version"; add "version -- x"
add "--bogus version"; add "--host"; add "--socket x --host y version"; add "zone version"; add "version zone"
add "ls"; add "version --json --socket /nope"; add "sandbox x"; add "sandbox"; add "sandbox -- /bin/true"
add "sandbox --zone z"; add "sandbox --timeout abc -- true"; add "sandbox --bogus -- true"; add "--socket /x sandbox -- true"
add "run"; add "run img"; add "run --socket x img"; add "--socket /x run img true"; add "exec"; add "exec c ls -l"
add "policy validate /nonexistent.toml"; add "policy validate"; add "audit verify --help"; add "version version"
add "sandbox --help --zone"; add "image ls --bogus"; add "zone ls -q"; add "task ls"; add "events --zone"
add "info --json"; add "secret ls"; add "sandbox -- "; add "rm"; add "kill -s"; add "containers"; add "ps -a"
add "--socket=/x"; add "--timeout-connect=2 version"; add "--timeout-connect= 2 version"
for top in $(subs); do
  add "$top"; add "$top --help"; add "$top -h"; add "$top --bogus"; add "$top bogus"; add "$top --socket"
  add "--socket /x $top"; add "$top --socket /x --help"; add "$top help"
  for sub in $(subs $top); do add "$top $sub --help"; add "$top $sub"; add "$top $sub --bogus"; add "$top $sub x y z"; done
done
cd "$T"; diffs=0
for line in "${corpus[@]}"; do
  read -r -a words <<<"$line"
  timeout 10 "$OLD" "${words[@]}" >"$T/o1" 2>"$T/e1" </dev/null; r1=$?
  timeout 10 "$NEW" "${words[@]}" >"$T/o2" 2>"$T/e2" </dev/null; r2=$?
  if [ $r1 != $r2 ] || ! cmp -s "$T/o1" "$T/o2" || ! cmp -s "$T/e1" "$T/e2"; then
    diffs=$((diffs+1)); echo "DIFF: rauha $line (exit $r1 vs $r2)"; diff "$T/o1" "$T/o2" | head -5; diff "$T/e1" "$T/e2" | head -5
  fi
done
echo "${#corpus[@]} command lines, $diffs differ"
cd / && rm -rf "$T"
[ "$diffs" -eq 0 ]
