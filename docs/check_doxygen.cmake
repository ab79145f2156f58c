# docs/check_doxygen.cmake - runs Doxygen and fails on any warning that is not listed in the
# known-warnings file. Run by the `docs` target:
#   cmake -DDOXYGEN=... -DDOXYFILE=... -DLOG=... -DKNOWN=... -DSOURCE_DIR=... -P check_doxygen.cmake
# A warning is compared without its line number and with paths relative to the source tree,
# so edits elsewhere in a file do not break the list. Listed warnings that no longer occur
# are reported, so the list only shrinks.
cmake_minimum_required(VERSION 3.23)
file(REMOVE "${LOG}")
execute_process(COMMAND "${DOXYGEN}" "${DOXYFILE}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "coio docs: doxygen failed (${rc})")
endif()

set(warnings "")
if(EXISTS "${LOG}")
    file(STRINGS "${LOG}" lines)
    foreach(line IN LISTS lines)
        if(line MATCHES "(warning|error): ")
            string(REPLACE "${SOURCE_DIR}/" "" line "${line}")
            string(REGEX REPLACE ":[0-9]+: (warning|error): " ": \\1: " line "${line}")
            list(APPEND warnings "${line}")
        endif()
    endforeach()
endif()

set(known "")
if(EXISTS "${KNOWN}")
    file(STRINGS "${KNOWN}" known_lines)
    foreach(line IN LISTS known_lines)
        if(NOT line MATCHES "^#" AND NOT line STREQUAL "")
            list(APPEND known "${line}")
        endif()
    endforeach()
endif()

set(new "")
foreach(w IN LISTS warnings)
    if(NOT w IN_LIST known)
        list(APPEND new "${w}")
    endif()
endforeach()
foreach(k IN LISTS known)
    if(NOT k IN_LIST warnings)
        message(STATUS "coio docs: fixed, remove from doxygen_known_warnings.txt: ${k}")
    endif()
endforeach()

list(LENGTH warnings total)
list(LENGTH new count)
if(count GREATER 0)
    foreach(w IN LISTS new)
        message("  ${w}")
    endforeach()
    message(FATAL_ERROR "coio docs: ${count} Doxygen warning(s) about public entities (above); "
                        "document them (see docs/doxygen_known_warnings.txt for the listed ones)")
endif()
message(STATUS "coio docs: ${total} warning(s), all listed in doxygen_known_warnings.txt")
