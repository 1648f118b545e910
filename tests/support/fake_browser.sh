#!/bin/sh
# A stand-in for the user's browser ($BROWSER) in the --open test: records the path it was
# given, the file's mode and its content, as a browser that reads the file would.
out="$FAKE_BROWSER_OUT"
{
  echo "$1"
  stat -c '%a' "$1"
  stat -c '%a' "$(dirname "$1")"
  cat "$1"
} > "$out.tmp" && mv "$out.tmp" "$out"
