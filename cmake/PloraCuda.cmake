# Builds libplora_cuda: real kernels for sm_80 and sm_90 when a CUDA compiler is found,
# otherwise a stub. Sets PLORA_CUDA_COMPILED for the tests.
option(PLORA_WITH_CUDA "Compile the CUDA kernels when nvcc is found" ON)
set(PLORA_CUDA_ARCHITECTURES "80;90" CACHE STRING "SM architectures of the CUDA kernels")

include(CheckLanguage)
if(PLORA_WITH_CUDA)
  check_language(CUDA)
endif()

if(PLORA_WITH_CUDA AND CMAKE_CUDA_COMPILER)
  set(CMAKE_CUDA_ARCHITECTURES ${PLORA_CUDA_ARCHITECTURES})
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)
  # every native/cuda/*.cu is a kernel file: a new kernel family's .cu needs no entry here
  file(GLOB PLORA_CUDA_KERNELS CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/native/cuda/*.cu")
  add_library(plora_cuda SHARED ${PLORA_CUDA_KERNELS} native/cuda/runtime.cpp)
  string(REPLACE ";" "," archs_csv "${PLORA_CUDA_ARCHITECTURES}")  # a ';' would split the define
  target_compile_definitions(plora_cuda PRIVATE PLORA_CUDA_ARCHITECTURES="${archs_csv}")
  target_compile_options(plora_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr>)
  set_target_properties(plora_cuda PROPERTIES
    CUDA_VISIBILITY_PRESET hidden
    CUDA_RUNTIME_LIBRARY Shared
    CUDA_ARCHITECTURES "${PLORA_CUDA_ARCHITECTURES}")
  target_link_libraries(plora_cuda PRIVATE CUDA::cudart)
  set(PLORA_CUDA_COMPILED ON)
  message(NOTICE "plora: CUDA kernels for sm ${PLORA_CUDA_ARCHITECTURES} with ${CMAKE_CUDA_COMPILER}")
else()
  include(PloraCudaStub)
  plora_generate_cuda_stub("${CMAKE_BINARY_DIR}/generated/plora_cuda_stub_kernels.cpp")
  add_library(plora_cuda SHARED native/cuda/stub.cpp native/cuda/runtime.cpp
    "${CMAKE_BINARY_DIR}/generated/plora_cuda_stub_kernels.cpp")
  target_compile_options(plora_cuda PRIVATE ${PLORA_WARNINGS})
  set(PLORA_CUDA_COMPILED OFF)
  message(NOTICE "plora: no CUDA compiler, building the libplora_cuda stub")
endif()
target_include_directories(plora_cuda PUBLIC native/include)
set_target_properties(plora_cuda PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${PLORA_LIB_OUTPUT_DIR}")
