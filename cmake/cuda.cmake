# Optional CUDA backend (issue 7): layers offloaded with -ngl / --gpu-layers run on the
# GPU. QRUN_CUDA=ON requires nvcc, OFF never uses it, AUTO (default) uses it when found.
# src/cuda/ is no layer of its own: this file adds either the CUDA sources or the stub
# whose create() refuses to the runtime layer, so exactly one GpuOffload::create is linked.
set(QRUN_HAVE_CUDA OFF)
if(NOT QRUN_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(QRUN_HAVE_CUDA ON)
  elseif(QRUN_CUDA STREQUAL "ON")
    message(FATAL_ERROR "QRUN_CUDA=ON but no CUDA compiler was found")
  endif()
endif()
message(STATUS "qrun CUDA backend: ${QRUN_HAVE_CUDA}")

# Sizing is plain arithmetic, shared by both builds (memory estimates work without CUDA).
target_sources(qrun_runtime PRIVATE ${PROJECT_SOURCE_DIR}/src/cuda/gpu_offload_size.cpp)

if(QRUN_HAVE_CUDA)
  # Turing (T4), Ampere (A100; RTX 30 runs the sm_80 code), Hopper (H100); newer chips
  # JIT the sm_90 PTX.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 75 80 90)
  endif()
  enable_language(CUDA)
  # The shared headers need C++20 (std::span, <bit>). CMake before 3.26 does not know
  # nvcc's C++20 flag (nvcc has had it since CUDA 12), so teach it.
  if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
    set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
    set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  endif()
  find_package(CUDAToolkit REQUIRED)
  file(GLOB QRUN_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu)
  # An object library folded into qrun_lib: the kernels and the library call each other
  # (sizing, RoPE table), which two static archives would resolve only in one link order.
  add_library(qrun_cuda OBJECT ${QRUN_CUDA_SOURCES})
  set_target_properties(qrun_cuda PROPERTIES
    CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON CUDA_EXTENSIONS OFF
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
    POSITION_INDEPENDENT_CODE ON)
  # Relaxed constexpr lets kernels call the constexpr block-geometry helpers of qrun/dtype.h.
  # No FMA contraction: the CPU side (ISO C++, -ffp-contract=off) rounds a*b+c twice, and
  # the int8 activation codes flip on last-bit differences.
  target_compile_options(qrun_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr --fmad=false>)
  target_include_directories(qrun_cuda PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR})
  target_link_libraries(qrun_cuda PRIVATE CUDA::cudart_static)
  target_sources(qrun_lib PRIVATE $<TARGET_OBJECTS:qrun_cuda>)
  # qrun_lib was created before the architectures were chosen.
  set_target_properties(qrun_lib PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
  target_link_libraries(qrun_lib PRIVATE CUDA::cudart_static)
  target_compile_definitions(qrun_lib PUBLIC QRUN_HAVE_CUDA=1)
else()
  target_sources(qrun_runtime PRIVATE ${PROJECT_SOURCE_DIR}/src/cuda/gpu_offload_none.cpp)
  target_compile_definitions(qrun_lib PUBLIC QRUN_HAVE_CUDA=0)
endif()
