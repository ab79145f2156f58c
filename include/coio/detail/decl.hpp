// coio/detail/decl.hpp - COIO_DECL, the linkage of coio's non-template bodies. Not API.
//
// coio is header-only: every body is `inline` and compiled in each translation unit that
// uses it. A program that defines COIO_SEPARATE_COMPILATION (on every target, e.g.
// `target_compile_definitions(app PRIVATE COIO_SEPARATE_COMPILATION)`) and includes
// <coio/src.hpp> in exactly one of its source files gets the event loop's bodies compiled
// once, in that file; the other files only declare them (see README, "Compile time").
#pragma once

#if defined(COIO_SEPARATE_COMPILATION)
#define COIO_DECL
#else
#define COIO_DECL inline
#endif

// True where the bodies are compiled: everywhere when header-only, else only in the file
// that includes <coio/src.hpp> (which defines COIO_SOURCE first).
#if !defined(COIO_SEPARATE_COMPILATION) || defined(COIO_SOURCE)
#define COIO_DEFINE_BODIES 1
#else
#define COIO_DEFINE_BODIES 0
#endif
