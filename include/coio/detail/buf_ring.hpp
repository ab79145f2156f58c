// coio/detail/buf_ring.hpp - a provided-buffer ring for multishot receives. Not API.
//
// liburing 2.3 (Debian 12) has io_uring_register_buf_ring and the io_uring_buf_ring_add /
// _advance inlines but not io_uring_setup_buf_ring (2.4), so the ring memory is mapped here
// and registered by hand: an anonymous mapping is page aligned, as the kernel requires.
//
// Contract: a buffer the kernel picked (CQE flag IORING_CQE_F_BUFFER, id in the upper flag
// bits) belongs to us until recycle(); the kernel never touches it meanwhile. coio copies
// the bytes out and recycles at once, so buffers never pile up behind a slow consumer and
// one idle connection cannot starve the others.
#pragma once

#include <liburing.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace coio::detail {

class provided_buffer_ring {
public:
    provided_buffer_ring() = default;
    provided_buffer_ring(const provided_buffer_ring&) = delete;
    provided_buffer_ring& operator=(const provided_buffer_ring&) = delete;
    ~provided_buffer_ring() { unmap(); }

    /// Maps `entries` (a power of two, <= 32768) buffers of `size` bytes and registers them as
    /// group `bgid` of `ring`. Returns 0 or -errno (-EINVAL on kernels without buffer rings).
    int setup(io_uring& ring, unsigned entries, unsigned size, std::uint16_t bgid) noexcept {
        if (entries == 0 || entries > 32768 || (entries & (entries - 1)) != 0) return -EINVAL;
        entries_ = entries;
        size_ = size;
        bgid_ = bgid;
        mask_ = io_uring_buf_ring_mask(entries);
        ring_bytes_ = entries * sizeof(io_uring_buf);
        void* r = ::mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (r == MAP_FAILED) return -errno;
        br_ = static_cast<io_uring_buf_ring*>(r);
        data_bytes_ = static_cast<std::size_t>(entries) * size;
        void* d = ::mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (d == MAP_FAILED) {
            const int e = -errno;
            unmap();
            return e;
        }
        base_ = static_cast<std::byte*>(d);
        io_uring_buf_reg reg;
        std::memset(&reg, 0, sizeof reg);
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
        reg.ring_entries = entries;
        reg.bgid = bgid;
        const int ret = io_uring_register_buf_ring(&ring, &reg, 0);
        if (ret != 0) {
            unmap();
            return ret;
        }
        registered_ = true;
        io_uring_buf_ring_init(br_);
        for (unsigned i = 0; i < entries; ++i)
            io_uring_buf_ring_add(br_, data(i), size_, static_cast<unsigned short>(i), mask_, static_cast<int>(i));
        io_uring_buf_ring_advance(br_, static_cast<int>(entries));
        return 0;
    }

    /// Unregisters the group (the ring must still exist). Memory stays mapped until the
    /// destructor, which runs after the ring is gone.
    void unregister(io_uring& ring) noexcept {
        if (registered_) io_uring_unregister_buf_ring(&ring, bgid_);
        registered_ = false;
    }

    [[nodiscard]] bool ready() const noexcept { return registered_; }
    [[nodiscard]] std::uint16_t group() const noexcept { return bgid_; }
    [[nodiscard]] unsigned buffer_size() const noexcept { return size_; }
    [[nodiscard]] std::byte* data(unsigned bid) const noexcept { return base_ + static_cast<std::size_t>(bid) * size_; }

    /// Hands buffer `bid` back to the kernel (visible at once: one release store).
    void recycle(unsigned bid) noexcept {
        io_uring_buf_ring_add(br_, data(bid), size_, static_cast<unsigned short>(bid), mask_, 0);
        io_uring_buf_ring_advance(br_, 1);
    }

private:
    void unmap() noexcept {
        if (base_) ::munmap(base_, data_bytes_);
        if (br_) ::munmap(br_, ring_bytes_);
        base_ = nullptr;
        br_ = nullptr;
    }

    io_uring_buf_ring* br_ = nullptr;
    std::byte* base_ = nullptr;
    std::size_t ring_bytes_ = 0;
    std::size_t data_bytes_ = 0;
    unsigned entries_ = 0;
    unsigned size_ = 0;
    int mask_ = 0;
    std::uint16_t bgid_ = 0;
    bool registered_ = false;
};

} // namespace coio::detail
