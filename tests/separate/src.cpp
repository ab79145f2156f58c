// The one source file of test_separate_compilation that compiles coio's loop bodies
// (COIO_SEPARATE_COMPILATION is defined for the whole target; see detail/decl.hpp).
#include <coio/src.hpp>
