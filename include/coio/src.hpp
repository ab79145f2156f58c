// coio/src.hpp - the event loop's bodies, for programs built with COIO_SEPARATE_COMPILATION:
// include this header in exactly one source file of the program (and define the macro for
// every source file), first and best alone in its file. Without the macro, including it is
// harmless: the bodies are inline, as everywhere.
//
// Example (CMake):
// @code
//   target_compile_definitions(app PRIVATE COIO_SEPARATE_COMPILATION)
//   target_sources(app PRIVATE coio_src.cpp)   // coio_src.cpp: #include <coio/src.hpp>
// @endcode
#pragma once

#if defined(COIO_SEPARATE_COMPILATION)
#if defined(COIO_DECL)
#error "include <coio/src.hpp> before any other coio header of that source file"
#endif
#define COIO_SOURCE 1
#endif

#include <coio/loop.hpp>
#include <coio/run.hpp>
