# tests/markdown_snippets.cmake - every ```cpp block of the given Markdown files is compiled
# as its own translation unit (target coio_markdown_snippets, part of the default build), so
# the code a reader copies from the README or the tutorial is known to compile as shown.
#
# A block is compiled exactly as written (it must be a complete file, includes and all)
# unless the HTML comment on the line just above it says otherwise:
#   <!-- snippet: declarations -->   namespace-scope code: <coio/coio.hpp>, <iostream>, <string>
#                                    and `using namespace std::chrono_literals;` come first
#   <!-- snippet: body(PARAMS) -->   statements: the same prelude, then the block becomes the
#                                    body of `coio::coro<void> snippet(PARAMS)` (PARAMS may be
#                                    empty; name what the fragment uses, e.g. a writer)
#   <!-- snippet: skip -->           not compiled (say why in the text)
# Errors point into the Markdown file (#line directives). Unused names are not warned about:
# a snippet shows a call, it need not use its result.

function(coio_add_markdown_snippets target)
    set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/markdown_snippets")
    set(sources "")
    set(fence_open "```cpp\n")
    set(fence_close "\n```")
    foreach(md IN LISTS ARGN)
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${md}")
        file(READ "${md}" text)
        get_filename_component(stem "${md}" NAME_WE)
        file(RELATIVE_PATH md_rel "${PROJECT_SOURCE_DIR}" "${md}")
        set(consumed 0)   # offset of `rest` in `text`
        set(rest "${text}")
        set(index 0)
        while(TRUE)
            string(FIND "${rest}" "${fence_open}" open)
            if(open EQUAL -1)
                break()
            endif()
            string(SUBSTRING "${rest}" 0 ${open} before)
            math(EXPR code_start "${open} + 7")
            string(SUBSTRING "${rest}" ${code_start} -1 after)
            string(FIND "${after}" "${fence_close}" close)
            if(close EQUAL -1)
                message(FATAL_ERROR "${md_rel}: a ```cpp block is not closed")
            endif()
            string(SUBSTRING "${after}" 0 ${close} code)
            math(EXPR next "${close} + 4")
            string(SUBSTRING "${after}" ${next} -1 rest)

            # The 1-based line of the block's first code line, for #line.
            string(SUBSTRING "${text}" 0 ${consumed} done_text)
            string(REGEX MATCHALL "\n" nl_done "${done_text}${before}")
            list(LENGTH nl_done line)
            math(EXPR line "${line} + 2")
            math(EXPR consumed "${consumed} + ${code_start} + ${next}")

            # The marker, if the line above the fence is one.
            set(kind "program")
            set(params "")
            if(before MATCHES "<!-- snippet: ([a-z]+)(\\(([^)]*)\\))? -->\n$")
                set(kind "${CMAKE_MATCH_1}")
                set(params "${CMAKE_MATCH_3}")
            endif()
            math(EXPR index "${index} + 1")
            if(kind STREQUAL "skip")
                continue()
            endif()
            set(prelude "#include <coio/coio.hpp>\n#include <iostream>\n#include <string>\nusing namespace std::chrono_literals;\n")
            if(kind STREQUAL "program")
                set(source "#line ${line} \"${md_rel}\"\n${code}\n")
            elseif(kind STREQUAL "declarations")
                set(source "${prelude}#line ${line} \"${md_rel}\"\n${code}\n")
            elseif(kind STREQUAL "body")
                set(source "${prelude}coio::coro<void> snippet(${params}) {\n#line ${line} \"${md_rel}\"\n${code}\nco_return;\n}\n")
            else()
                message(FATAL_ERROR "${md_rel}:${line}: unknown snippet kind '${kind}' (program, declarations, body, skip)")
            endif()
            set(file "${out_dir}/${stem}_${index}.cpp")
            set(old "")
            if(EXISTS "${file}")
                file(READ "${file}" old)
            endif()
            if(NOT old STREQUAL source)   # rewrite only what changed: no needless rebuilds
                file(WRITE "${file}" "${source}")
            endif()
            list(APPEND sources "${file}")
        endwhile()
    endforeach()
    if(NOT sources)
        message(FATAL_ERROR "coio_add_markdown_snippets: no ```cpp block found in ${ARGN}")
    endif()
    add_library(${target} OBJECT ${sources})
    target_link_libraries(${target} PRIVATE coio::coio coio_project_options)
    # -Wsubobject-linkage: g++ does not warn about a lambda stored in a coroutine frame in
    # the main file, but #line makes it believe the code comes from another (the .md) file.
    target_compile_options(${target} PRIVATE -Wno-unused-variable -Wno-unused-parameter
        $<$<CXX_COMPILER_ID:GNU>:-Wno-unused-but-set-variable -Wno-subobject-linkage>)
    list(LENGTH sources count)
    message(STATUS "coio: ${count} Markdown C++ snippets compiled by target ${target}")
endfunction()
