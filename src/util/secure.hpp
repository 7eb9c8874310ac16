// util/: small value types shared by several modules.
// SecureString: a std::string whose every buffer is wiped (sodium_memzero) before it is
// freed, including the buffers left behind when it grows. Passwords live only in these.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <string>

namespace portcullis {

template <class T>
struct ZeroingAllocator {
    using value_type = T;
    ZeroingAllocator() noexcept = default;
    template <class U>
    ZeroingAllocator(const ZeroingAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept {
        sodium_memzero(p, n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <class U>
    bool operator==(const ZeroingAllocator<U>&) const noexcept {
        return true;
    }
};

// Short strings live inside the object (SSO); the destructor below wipes that too.
class SecureString {
  public:
    using Storage = std::basic_string<char, std::char_traits<char>, ZeroingAllocator<char>>;
    SecureString() = default;
    explicit SecureString(std::string_view s) : s_(s.data(), s.size()) {}
    SecureString(const SecureString&) = default;
    SecureString& operator=(const SecureString&) = default;
    SecureString(SecureString&& o) noexcept : s_(std::move(o.s_)) { o.wipe(); }
    SecureString& operator=(SecureString&& o) noexcept {
        if (this != &o) {
            wipe();
            s_ = std::move(o.s_);
            o.wipe();
        }
        return *this;
    }
    ~SecureString() { wipe(); }

    std::string_view view() const { return {s_.data(), s_.size()}; }
    const char* data() const { return s_.data(); }
    std::size_t size() const { return s_.size(); }
    bool empty() const { return s_.empty(); }
    void append(std::string_view s) { s_.append(s.data(), s.size()); }
    void push_back(char c) { s_.push_back(c); }
    void pop_back() { s_.pop_back(); }
    void wipe() {
        sodium_memzero(s_.data(), s_.size());
        s_.clear();
    }
    bool operator==(const SecureString& o) const { return view() == o.view(); }

  private:
    Storage s_;
};

}  // namespace portcullis
