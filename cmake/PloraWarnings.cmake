# Warnings for our own C++ sources (not for nvcc device code).
set(PLORA_WARNINGS -Wall -Wextra -Wno-unused-parameter)
