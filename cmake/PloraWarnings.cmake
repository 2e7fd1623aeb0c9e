# Warnings for our own C++ sources (not for nvcc device code).
# -Wno-psabi: the 8-float vectors of the host kernels change the ABI only of internal inline helpers
set(PLORA_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-psabi)
