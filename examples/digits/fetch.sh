#!/usr/bin/env bash
# fetch.sh: put scikit-learn's 8x8 handwritten digits (digits.csv.gz, 1,797
# samples) in examples/digits/data/, taken from Debian's python3-sklearn
# package: downloaded with apt-get and extracted with dpkg -x, not
# installed (no Python needed). Does nothing when the file is there.
set -euo pipefail

dest="$(cd "$(dirname "$0")" && pwd)/data/digits.csv.gz"
if [ -s "$dest" ]; then
	echo "$dest is there"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
# apt-get download needs package lists; refresh them only when it fails.
if ! apt-get download python3-sklearn >/dev/null 2>&1; then
	apt-get update -qq || echo "apt-get update failed; trying the cached package lists" >&2
	apt-get download python3-sklearn
fi
dpkg -x python3-sklearn_*.deb pkg
csv=$(find pkg -path '*/sklearn/datasets/data/digits.csv.gz' | head -n 1)
if [ -z "$csv" ]; then
	echo "fetch.sh: no sklearn/datasets/data/digits.csv.gz in $(ls python3-sklearn_*.deb)" >&2
	exit 1
fi
mkdir -p "$(dirname "$dest")"
cp "$csv" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "$dest: $(zcat "$dest" | wc -l) samples"
