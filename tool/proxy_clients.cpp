#include "proxy_clients.hpp"

#include <algorithm>

namespace sluice::proxy {

std::optional<token_bucket_config> write_bucket(const std::optional<std::uint64_t>& rate,
                                                const limit_set& limits) {
  if (!rate)
    return std::nullopt;
  return write_limit(shape_bucket(*rate, limits.tick, limits.burst));
}

bool client_table::admit(connection& c, const limit_set& limits) {
  std::string address = client_address(c.peer);
  auto it = entries_.find(address);
  if (it != entries_.end() && limits.per_ip_max_connections &&
      it->second.connections.size() >= *limits.per_ip_max_connections)
    return false;
  if (it == entries_.end()) {
    it = entries_.try_emplace(address).first;
    it->second.address = address;
    shape(it->second, limits);
  }
  client_entry& e = it->second;
  e.connections.push_back(&c);
  c.from = &e;
  if (e.down)
    c.client.join(*e.down);
  if (e.up)
    c.upstream.join(*e.up);
  return true;
}

void client_table::release(connection& c) {
  if (!c.from)
    return;
  client_entry& e = *c.from;
  c.from = nullptr;
  c.client.leave_group();
  c.upstream.leave_group();
  std::erase(e.connections, &c);
  if (e.connections.empty())
    entries_.erase(e.address);
}

void client_table::shape(client_entry& e, const limit_set& limits) {
  reshape(e.down, write_bucket(limits.per_ip.down, limits), executor_, [&](rate_limit_group& g) {
    for (connection* c : e.connections)
      c->client.join(g);
  });
  reshape(e.up, write_bucket(limits.per_ip.up, limits), executor_, [&](rate_limit_group& g) {
    for (connection* c : e.connections)
      c->upstream.join(g);
  });
}

void client_table::apply(const limit_set& limits) {
  for (auto& [address, e] : entries_)
    shape(e, limits);
}

std::size_t client_table::open_from(const std::string& address) const {
  auto it = entries_.find(address);
  return it == entries_.end() ? 0 : it->second.connections.size();
}

} // namespace sluice::proxy
