#!/usr/bin/env bash
# Copy espeak-ng (binary, the shared libraries it links, English data only) and tqdm into
# models/data/gpu/ (git-ignored, ~14 MB) so that gpu_train.sh can build the corpus on a machine
# without espeak-ng. Needs glibc >= 2.34 on the target (the libraries' newest symbol version).
set -euo pipefail
B=${1:-models/data/gpu}
rm -rf "$B" && mkdir -p "$B/bin" "$B/lib" "$B/py" "$B/share"
cp -L "$(command -v espeak-ng)" "$B/bin/"
for l in $(ldd "$(command -v espeak-ng)" | awk '/=>/{print $3}'); do
  case $l in *libc.so*|*libm.so*) ;; *) cp -L "$l" "$B/lib/" ;; esac
done
cp -r /usr/lib/x86_64-linux-gnu/espeak-ng-data "$B/share/"
(cd "$B/share/espeak-ng-data" && ls ./*_dict | grep -v '^./en_dict$' | xargs rm -f)
python_site=$(/work/venv/bin/python -c "import tqdm, os; print(os.path.dirname(os.path.dirname(tqdm.__file__)))")
cp -r "$python_site/tqdm" "$B/py/"
du -sh "$B"
