# The launch rewrite of the CUDA simulator: turns a CUDA source (IN) into C++ for the host
# compiler (OUT), as a preprocessing step, since C++ has no <<< >>> and no per-block storage:
#   kernel<<<grid, block, bytes, stream>>>(args)  ->  ::sim::Launch(kernel, "kernel", grid, block, bytes, stream)(args)
#   __shared__ T name[dims];                      ->  SIM_SHARED(T, name, [dims]);
# Nothing else changes; a #line directive keeps the original file and line numbers in messages.
# Usage: cmake -DIN=file.cu -DOUT=file.cpp -P translate.cmake
file(READ "${IN}" text)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)[ \t\r\n]*<<<" "::sim::Launch(\\1, \"\\1\", " text "${text}")
string(REGEX REPLACE ">>>[ \t\r\n]*\\(" ")(" text "${text}")
string(REGEX REPLACE
  "__shared__[ \t]+([A-Za-z_][A-Za-z0-9_: ]*[A-Za-z0-9_])[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*((\\[[^];]*\\])*)[ \t]*;"
  "SIM_SHARED(\\1, \\2, \\3);" text "${text}")
if(text MATCHES "<<<|>>>|__shared__")
  message(FATAL_ERROR "${IN}: a launch or __shared__ declaration the simulator's rewrite does not understand")
endif()
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${text}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
