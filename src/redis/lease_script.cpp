// The lease script: one atomic step of a shared bucket per renewal (doc/fleet.md).
#include <sluice/detail/redis/lease_store.hpp>

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace sluice::redis::detail {

// KEYS[1]: the bucket (a hash: its tokens and config, and the water level of the last walk
// over the members), KEYS[2]: its members (a hash of msgpack records
// {demand, weight, granted rate, lease end, last seen, seq, reply}).
// ARGV: member, seq, demand (B/s, negative = unbounded), weight, rate (B/s), burst (bytes),
// lease (µs), ttl (µs), config version, give-back (bytes), release (0/1).
// Times are Redis TIME in µs, exact in a Lua number (a double) until the year 2255. Numbers are
// written with %.17g or %.0f: Redis turns a Lua number argument into text with %.14g,
// which would round a time in µs.
// The shebang makes it a Redis 7 script that declares itself: one that may write, and so is
// refused whole when Redis is out of memory. Without it Redis refuses a script only until its
// first write, and a call that began with a DEL (always allowed) went on to grant as usual.
const std::string& lease_script() {
  static const std::string script = R"lua(#!lua
local state, members = KEYS[1], KEYS[2]
local id, seq = ARGV[1], tonumber(ARGV[2])
local demand, weight = tonumber(ARGV[3]), tonumber(ARGV[4])
local rate, burst = tonumber(ARGV[5]), tonumber(ARGV[6])
local lease, ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local version, give_back = tonumber(ARGV[9]), tonumber(ARGV[10])
local releasing = ARGV[11] == '1'
if not (weight and weight > 0) or not (lease and lease > 0) or not (rate and rate > 0) then
  return redis.error_reply('sluice lease: weight, lease and rate must be positive')
end
if demand < 0 then demand = math.huge end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function num(x) return string.format('%.17g', x) end

-- A repeated seq (a retry whose first answer was lost) gets the stored answer again.
local mine = redis.call('HGET', members, id)
local me = mine and cmsgpack.unpack(mine)
if me and me[6] == seq and now - me[5] <= ttl then return me[7] end

local s = redis.call('HMGET', state, 'tokens', 'at', 'last', 'epoch', 'version', 'rate', 'burst',
                    'extra', 'walked', 'level', 'left', 'weights', 'count', 'capped', 'gsum',
                    'gend')
local tokens, at, last, epoch = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4])
local extra = tonumber(s[8]) or 0
-- The water level of the last walk over the members (6, below): when, the level (negative:
-- every demand was met, and `left` was left over), the members' total weight and count, and
-- the weight of those whose share the level caps.
local walked, level, left = tonumber(s[9]), tonumber(s[10]), tonumber(s[11])
local weights, count, capped = tonumber(s[12]), tonumber(s[13]), tonumber(s[14])
-- The members' granted rates, and the same times their leases' ends (µs), summed: the leases
-- not yet delivered, between two walks.
local gsum, gend = tonumber(s[15]), tonumber(s[16])
if not epoch then -- new, or the store lost it: an empty bucket, a new epoch
  tokens, at, last, epoch, extra, walked = 0, now, now, now, 0, nil
  redis.call('DEL', members)
  me = nil
end
-- The config with the highest version wins; a new one changes every share.
local held = tonumber(s[5])
if held and held >= version then
  version, rate, burst = held, tonumber(s[6]), tonumber(s[7])
else
  walked = nil
end
local secs = lease / 1e6

-- 1, 2: refill from Redis TIME, capped at burst; a step backwards refills nothing. After a
-- silence of more than two leases with members (the fleet ran on held shares meanwhile, so
-- no budget went unused) one lease at most, and never past empty: what is owed then is for
-- leases since delivered, and paying the refill out again would overshoot after an outage.
local elapsed = math.max(0, now - at)
local refill = rate * elapsed / 1e6
local stored = redis.call('HLEN', members)
if now - last > 2 * lease and stored > 0 then
  refill = math.min(rate * lease / 1e6, math.max(0, -tokens))
  extra = 0
end
tokens = math.min(burst, tokens + refill)

-- The walk over every member (3 and 6) costs what the group's size does: it is done at most
-- every quarter lease, and at the first call after a release, when a member was silent for a
-- TTL, the config changed or the store lost its state. In between, shares come from its
-- level, and a newcomer is counted in it at once (so that a fleet joining at once, after a
-- restart of Redis say, costs no walk per member).
local old_demand, old_weight = 0, 0 -- this member's last, or a newcomer's: nothing
if me then old_demand, old_weight = me[1], me[2] end
local walk = not walked or not gsum or now - walked >= lease / 4 or stored ~= count or
             (me and now - me[5] > ttl) or
             (level and level < 0 and demand > left + old_demand) -- every demand met; not now

-- 3: drop members silent for a TTL, crediting back what their lease had not yet delivered.
local live, prepaid = {}, 0 -- prepaid: the others' leases not yet delivered
if walk and not releasing then
  gsum, gend = 0, 0
  local all = redis.call('HGETALL', members)
  for i = 1, #all, 2 do
    local m = cmsgpack.unpack(all[i + 1])
    local undelivered = m[3] * math.max(0, m[4] - now) / 1e6
    if now - m[5] > ttl then
      tokens = tokens + undelivered
      redis.call('HDEL', members, all[i])
      if all[i] == id then me = nil end
    elseif all[i] ~= id then
      live[#live + 1] = m
      prepaid = prepaid + undelivered
      gsum, gend = gsum + m[3], gend + m[3] * m[4]
    end
  end
elseif me and gsum then -- this member's lease leaves the sums (its new one joins them)
  gsum, gend = gsum - me[3], gend - me[3] * me[4]
end

-- 5: credit this member's undelivered lease (the new grant replaces it) and its unspent tokens.
if me then tokens = tokens + me[3] * math.max(0, me[4] - now) / 1e6 end
tokens = math.min(burst, tokens + math.max(0, give_back))

local function save()
  redis.call('HSET', state, 'tokens', num(tokens), 'at', num(now), 'last', num(now),
             'epoch', num(epoch), 'version', num(version), 'rate', num(rate), 'burst', num(burst),
             'extra', num(extra), 'walked', num(walked), 'level', num(level or -1),
             'left', num(left), 'weights', num(weights), 'count', num(count),
             'capped', num(capped), 'gsum', num(gsum or 0), 'gend', num(gend or 0))
  local keep = math.max(60000, math.floor(10 * ttl / 1000))
  redis.call('PEXPIRE', state, keep)
  redis.call('PEXPIRE', members, keep)
end

if releasing then
  local others = stored - (me and 1 or 0)
  redis.call('HDEL', members, id)
  walked = walked or 0 -- the next call walks: the count no longer matches
  level, left, weights, count, capped = level or -1, left or 0, weights or 0, -1, capped or 0
  save()
  return {0, now, 0, others, epoch, version, now}
end

-- 6: the weighted max-min water level. Tokens that no lease has claimed (the bucket's, plus
-- what it prepaid for the others' leases: the rate that went unused, or was given back) are
-- paid out as extra rate, averaged over the last few walks: paid to each caller as it found
-- them, they would go to whoever renews first after a give-back, round after round.
local share
if walk then
  live[#live + 1] = {demand, weight}
  extra = 0.75 * extra + 0.25 * math.max(0, tokens + prepaid) / secs
  weights = 0
  for _, m in ipairs(live) do
    m.key = m[1] / m[2]
    weights = weights + m[2]
  end
  table.sort(live, function(a, b) return a.key < b.key end)
  left, capped, level = rate + extra, weights, nil
  for _, m in ipairs(live) do
    if m[1] * capped <= left * m[2] then
      left, capped = left - m[1], capped - m[2]
    else
      level = left / capped
      break
    end
  end
  walked, count = now, #live
  if level then
    share = math.min(demand, level * weight)
  else -- every demand met: what is left goes by weight, so that a member may grow at once
    share = demand + left * weight / weights
  end
else
  if not me then
    -- A newcomer: the level as if it wanted without bound and those below the level stayed
    -- there, which is never above the level with it in (the next walk places it exactly).
    count = count + 1
    if level >= 0 then
      level = level * capped / (capped + weight)
      capped = capped + weight
    end
  end
  weights = weights - old_weight + weight
  -- The extra rate follows the unclaimed tokens at every call, as on a walk; what it gains or
  -- loses goes to the members the level caps (or to what is left when it caps nobody). A lease
  -- already over counts below zero in the sums until its member renews or is dropped: a little
  -- less extra, never more.
  prepaid = math.max(0, (gend - now * gsum) / 1e6)
  local before = extra
  extra = 0.75 * extra + 0.25 * math.max(0, tokens + prepaid) / secs
  if level >= 0 then
    level = math.max(0, level + (extra - before) / capped)
  else
    left = math.max(0, left + extra - before)
  end
  if level < 0 then level = nil end
  if level then
    share = math.min(demand, level * weight)
  else -- what was left at the walk, less what this member now wants beyond its last demand
    left = left + old_demand - demand
    share = demand + left * weight / weights
  end
end

-- 7: never let the bucket owe more than one lease.
local grant = math.floor(math.max(0, math.min(share, (tokens + rate * secs) / secs)))
tokens = tokens - grant * secs
gsum, gend = gsum + grant, gend + grant * (now + lease)

-- 8: the answer, stored for a replay.
local answer = {grant, now + lease, math.floor(rate * weight / weights), count, epoch, version,
                now}
redis.call('HSET', members, id, cmsgpack.pack({demand, weight, grant, now + lease, now, seq,
                                               answer}))
save()
return answer
)lua";
  return script;
}

std::vector<std::string> lease_keys(std::string_view group, std::string_view bucket) {
  if (group.empty() || group.find_first_of("{}") != std::string_view::npos)
    throw std::invalid_argument("sluice::redis: group name \"" + std::string(group) +
                                "\": must be non-empty, without '{' or '}'");
  std::string prefix = "{sluice:" + std::string(group) + "}:" + std::string(bucket);
  return {prefix + ":bucket", prefix + ":members"};
}

std::optional<lease_grant> parse_grant(const reply& r, std::string& why) {
  if (r.is_error()) {
    why = r.str;
    return std::nullopt;
  }
  if (r.type != reply::kind::array || r.elements.size() != 7) {
    why = "the lease script's reply is not an array of 7";
    return std::nullopt;
  }
  for (const reply& e : r.elements)
    if (e.type != reply::kind::integer || e.integer < 0) {
      why = "the lease script's reply holds a non-integer or a negative";
      return std::nullopt;
    }
  auto u = [&](std::size_t i) { return static_cast<std::uint64_t>(r.elements[i].integer); };
  auto s = [&](std::size_t i) { return r.elements[i].integer; };
  return lease_grant{u(0), s(1), u(2), u(3), s(4), u(5), s(6)};
}

namespace {
std::string text(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
} // namespace

void lease_store::async_lease(std::vector<std::vector<std::string>> keys,
                              std::vector<lease_request> requests, handler done) {
  run(std::move(keys), std::move(requests), std::move(done), false);
}

void lease_store::run(std::vector<std::vector<std::string>> keys,
                      std::vector<lease_request> requests, handler done, bool retried) {
  const bool load = digest_.empty();
  std::vector<command> cmds;
  if (load)
    cmds.push_back({"SCRIPT", "LOAD", lease_script()});
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const lease_request& q = requests[i];
    command c = {load ? "EVAL" : "EVALSHA", load ? lease_script() : digest_, "2"};
    c.insert(c.end(), keys[i].begin(), keys[i].end());
    for (std::string arg :
         {q.member, std::to_string(q.seq), text(q.demand), text(q.weight), std::to_string(q.rate),
          std::to_string(q.burst), std::to_string(q.lease_us), std::to_string(q.ttl_us),
          std::to_string(q.version), std::to_string(q.give_back),
          std::string(q.release ? "1" : "0")})
      c.push_back(std::move(arg));
    cmds.push_back(std::move(c));
  }
  client_.async_exec(
      std::move(cmds),
      [this, load, retried, keys = std::move(keys), requests = std::move(requests),
       done = std::move(done)](boost::system::error_code ec, std::vector<reply> replies) mutable {
        outcome out;
        out.ec = ec;
        if (ec)
          return done(std::move(out));
        std::size_t first = 0;
        if (load) {
          if (replies.at(0).type == reply::kind::string)
            digest_ = replies[0].str;
          first = 1;
        }
        for (std::size_t i = first; i < replies.size(); ++i) {
          if (replies[i].is_error() && replies[i].str.starts_with("NOSCRIPT") && !retried) {
            digest_.clear(); // the server lost its scripts (a restart): load it again
            return run(std::move(keys), std::move(requests), std::move(done), true);
          }
          std::string why;
          auto grant = parse_grant(replies[i], why);
          if (!grant) {
            out.error = why;
            out.grants.clear();
            break;
          }
          out.grants.push_back(*grant);
        }
        done(std::move(out));
      });
}

} // namespace sluice::redis::detail
