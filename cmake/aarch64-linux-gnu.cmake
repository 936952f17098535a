# Cross-compiles for 64-bit ARM Linux with Debian's toolchain (g++-aarch64-linux-gnu)
# against the arm64 multiarch -dev packages (/usr/lib/aarch64-linux-gnu), as
# scripts/cpu_matrix.sh installs them:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
# The binaries run under qemu-user (qemu-aarch64; QEMU_CPU=max for SVE/SVE2).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# gtest_discover_tests lists each test binary's tests at build time, and ctest runs
# them, through this.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)

# pkg-config must see the arm64 .pc files only, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
