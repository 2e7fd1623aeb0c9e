#!/usr/bin/env bash
# Packs what the Java test suite needs into gpu-java/ (ignored by git), so that a GPU machine with
# CUDA but no JDK or Maven can run the suite's CUDA cases: scripts/gpu-check.sh runs it when
# gpu-java/ is there. Run it here after `mvn -B verify` (or `mvn -B package`).
#
#   gpu-java/runtime.tgz   a jlinked Java runtime: the modules the library and its tests use,
#                          without java.desktop (only the demo's charts need it), stripped
#   gpu-java/lib/*.jar     the runtime jars but JFreeChart and the text jars (plora-core's jar
#                          among them), plora-core's test classes (the backend cases; the command
#                          line's tests, which need JFreeChart and jqwik, stay here, and so do
#                          dev.plora.text's) and the JUnit console launcher matching the
#                          project's JUnit
#   gpu-java/native/       libgomp.so.1, in case the GPU machine lacks it
#   gpu-java/STAMP         the commit it was built from
#
# The bundle must travel with the working tree to the GPU machine, within 64 MiB in all: the
# script fails if it grows past 60 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=gpu-java
LIMIT_MIB=60
MODULES=java.base,java.logging,java.management,java.sql,jdk.unsupported,jdk.zipfs  # zipfs: JUnit scans jars

die() {
  echo "gpu-java-bundle: $*" >&2
  exit 1
}

for tool in jlink jar mvn; do command -v $tool >/dev/null || die "needs $tool (a JDK and Maven)"; done
classpath_file=plora-cli/target/classpath.txt
tests=plora-core/target/test-classes
[[ -f $classpath_file && -d $tests ]] \
  || die "build first: mvn -B package ($classpath_file and $tests are missing)"
junit=$(sed -n 's|.*<junit.version>\(5\.[0-9.]*\)</junit.version>.*|\1|p' pom.xml)
[[ -n $junit ]] || die "no <junit.version> 5.x in pom.xml"
platform=1.${junit#5.}  # JUnit Jupiter 5.x.y ships with Platform 1.x.y

# built aside and moved into place at the end: a failed run leaves the previous bundle, never half a one
tmp=$(mktemp -d)
build=$(mktemp -d .gpu-java.XXXXXX)
trap 'rm -rf "$tmp" "$build"' EXIT
chmod 755 "$build"  # mktemp's 0700 would keep another user of the GPU machine out
mkdir -p "$build/lib"

jlink --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files --compress=2 \
  --strip-native-debug-symbols exclude-debuginfo-files --output "$tmp/runtime"
tar -C "$tmp" -czf "$build/runtime.tgz" runtime

# Text (tokenizers, chat templates) runs on the CPU alone, and its jars (DJL's tokenizers with four
# platforms' native libraries, Jinjava with Guava: 33 MB) would take the bundle past its limit:
# the dependencies of those two, as plora-core's dependency tree lists them, stay here.
mvn -q -B -pl plora-core dependency:tree -DoutputFile="$tmp/tree.txt" >/dev/null || die "mvn dependency:tree failed"
awk '{ depth = match($0, /[a-z]/) }
  $0 ~ /ai\.djl\.huggingface:tokenizers:|com\.hubspot\.jinjava:jinjava:/ { under = depth; print substr($0, depth); next }
  under && depth > under { print substr($0, depth); next }
  { under = 0 }' "$tmp/tree.txt" \
  | awk -F: '{ print (NF == 6 ? $2 "-" $5 "-" $4 : $2 "-" $4) ".jar" }' >"$tmp/text-jars.txt"
grep -q '^tokenizers-' "$tmp/text-jars.txt" || die "no DJL tokenizers in plora-core's dependency tree"
tr ':' '\n' <"$classpath_file" | while read -r jar || [[ -n $jar ]]; do  # the last entry has no newline
  grep -qxF "$(basename "$jar")" "$tmp/text-jars.txt" && continue
  case $jar in *jfreechart*) ;; *.jar) cp "$jar" "$build/lib/" ;; esac
done
# the OpenMP runtime libplora_cpu needs, for a machine without one (gpu-check then adds it)
mkdir -p "$build/native"
cache=$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null || true)  # /sbin: off a non-root PATH
gomp=$(sed -n 's/.*libgomp\.so\.1 (libc6,x86-64) => //p' <<<"$cache" | head -n 1)
if [[ -n $gomp ]]; then
  cp -L "$gomp" "$build/native/"
else
  echo "gpu-java-bundle: warning: libgomp.so.1 not found here; a GPU machine without it cannot load the CPU kernels" >&2
fi
mkdir -p "$tmp/tests"
cp -r "$tests"/. "$tmp/tests/"
rm -rf "$tmp/tests/dev/plora/text"  # their jars stay here (above)
jar --create --file "$build/lib/plora-tests.jar" -C "$tmp/tests" .
mvn -q -B dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$platform" \
  -DoutputDirectory="$build/lib" || die "could not fetch the JUnit console launcher $platform"

# what was bundled: gpu-check.sh warns when the tree it checks has moved on since
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- plora-core pom.xml native || echo ' with uncommitted changes') built $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$build/STAMP"

bytes=$(du -sb "$build" | cut -f1)
mib=$(((bytes + 1048575) / 1048576))
((mib <= LIMIT_MIB)) || die "the bundle is $mib MiB, over the $LIMIT_MIB MiB it may take of the 64 MiB that travel"
rm -rf "$OUT"
mv "$build" "$OUT"
echo "gpu-java-bundle: $OUT is $mib MiB (runtime $(du -h "$OUT/runtime.tgz" | cut -f1), $(ls "$OUT/lib" | wc -l) jars)"
