#ifndef SLUICE_DETAIL_CORE_LOWEST_LAYER_HPP
#define SLUICE_DETAIL_CORE_LOWEST_LAYER_HPP

namespace sluice::detail {

/// The lowest layer of a stream adapter's next layer: its own lowest_layer_type where it has
/// one (sockets, ssl::stream, sluice's adapters), else the next layer itself.
template <class T>
struct lowest_layer_of {
  using type = T;
};
template <class T>
requires requires {
  typename T::lowest_layer_type;
}
struct lowest_layer_of<T> {
  using type = typename T::lowest_layer_type;
};

} // namespace sluice::detail

#endif
