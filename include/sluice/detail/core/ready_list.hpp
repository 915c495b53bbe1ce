#ifndef SLUICE_DETAIL_CORE_READY_LIST_HPP
#define SLUICE_DETAIL_CORE_READY_LIST_HPP

#include <sluice/detail/core/parked_op.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <vector>

namespace sluice::detail {

/// The parked operations that one call of a core made ready, completed in the order added
/// once the core's lock is released: declare it before the lock guard. A handler never runs
/// inline (parked_op_impl defers it), but completing under the lock would still hold the
/// lock while memory is freed and work is queued.
class ready_list {
public:
  ready_list() = default;
  ready_list(const ready_list&) = delete;
  ready_list& operator=(const ready_list&) = delete;
  ~ready_list() {
    for (std::size_t i = 0; i < count_ && i < local_.size(); ++i)
      local_[i].op->complete(local_[i].ec, local_[i].n);
    for (auto& e : more_)
      e.op->complete(e.ec, e.n);
  }

  void add(parked_op* op, const boost::system::error_code& ec, std::size_t n) {
    if (count_ < local_.size())
      local_[count_] = {op, ec, n};
    else
      more_.push_back({op, ec, n});
    ++count_;
  }

private:
  struct entry {
    parked_op* op;
    boost::system::error_code ec;
    std::size_t n;
  };
  // A pipe call completes at most both ends' reads and writes: no allocation there.
  std::array<entry, 4> local_;
  std::vector<entry> more_;
  std::size_t count_ = 0;
};

} // namespace sluice::detail

#endif
