// coio/coio.hpp - everything coio offers: asyncio for C++20 on io_uring.
#pragma once

#include <coio/as_completed.hpp>
#include <coio/async_generator.hpp>
#include <coio/awaitable_traits.hpp>
#include <coio/coro.hpp>
#include <coio/datagram.hpp>
#include <coio/dns.hpp>
#include <coio/endpoint.hpp>
#include <coio/errors.hpp>
#include <coio/future.hpp>
#include <coio/gather.hpp>
#include <coio/loop.hpp>
#include <coio/outcome.hpp>
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/shield.hpp>
#include <coio/sleep.hpp>
#include <coio/socket.hpp>
#include <coio/stream_errors.hpp>
#include <coio/stream_reader.hpp>
#include <coio/stream_writer.hpp>
#include <coio/streams.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>
#include <coio/uring.hpp>
#include <coio/wait.hpp>
