#!/usr/bin/env bash
# Builds a corpus of real English text from what any Debian machine has (package documentation,
# changelogs, licences, Perl's manual), as .txt files of at most 1 MB, until SIZE_MB megabytes are
# reached (the set is repeated in numbered copies if the machine has less).
#   bench/make_corpus.sh OUT_DIR SIZE_MB
set -euo pipefail
out=$1
size=$(( $2 * 1000000 ))
mkdir -p "$out/src"
n=0
total=0
while IFS= read -r -d '' f; do
  [ "$total" -ge "$size" ] && break
  dest="$out/src/$(printf '%06d' $n).txt"
  case "$f" in
    *.gz) gzip -dc "$f" 2>/dev/null | head -c 1000000 > "$dest" || true ;;
    *) head -c 1000000 "$f" > "$dest" ;;
  esac
  # Only valid UTF-8 text without NUL bytes and of some length.
  if [ "$(stat -c %s "$dest")" -lt 2000 ] || ! iconv -f UTF-8 -t UTF-8 "$dest" >/dev/null 2>&1 || grep -qP '\x00' "$dest"; then
    rm -f "$dest"
  else
    n=$((n + 1))
    total=$((total + $(stat -c %s "$dest")))
  fi
done < <(find /usr/share/doc /usr/share/common-licenses /usr/share/perl -type f \
           \( -name '*.gz' -o -name 'copyright' -o -name '*.txt' -o -name '*.md' -o -name 'README*' -o -name '*.pod' \) -print0 | sort -z)
have=$total
copy=0
while [ "$total" -lt "$size" ]; do
  copy=$((copy + 1))
  cp -r "$out/src" "$out/copy$copy"
  total=$((total + have))
done
echo "$out: $(find "$out" -type f | wc -l) files, $(du -sb "$out" | cut -f1) bytes ($n distinct files)"
