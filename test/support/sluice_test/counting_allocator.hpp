// An allocator that counts what goes through it, to check that operations allocate with
// their handler's associated allocator.
#ifndef SLUICE_TEST_COUNTING_ALLOCATOR_HPP
#define SLUICE_TEST_COUNTING_ALLOCATOR_HPP

#include <cstddef>
#include <memory>

namespace sluice_test {

struct allocation_counts {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
};

template <class T>
struct counting_allocator {
  using value_type = T;

  explicit counting_allocator(allocation_counts* c) noexcept : counts(c) {}
  template <class U>
  counting_allocator(const counting_allocator<U>& other) noexcept : counts(other.counts) {}

  T* allocate(std::size_t n) {
    ++counts->allocations;
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, std::size_t n) {
    ++counts->deallocations;
    std::allocator<T>().deallocate(p, n);
  }
  template <class U>
  bool operator==(const counting_allocator<U>& other) const noexcept {
    return counts == other.counts;
  }
  template <class U>
  bool operator!=(const counting_allocator<U>& other) const noexcept {
    return counts != other.counts;
  }

  allocation_counts* counts;
};

} // namespace sluice_test

#endif
