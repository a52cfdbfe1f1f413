#include "store/testing/conformance.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "model/ipv4.h"

namespace dspool {

// Readable failure output for the model types.
void PrintTo(const Pool& p, std::ostream* os) { *os << PoolToJson(p).dump(); }
void PrintTo(const Instance& i, std::ostream* os) { *os << InstanceToJson(i).dump(); }
void PrintTo(const User& u, std::ostream* os) { *os << UserToJson(u).dump(); }
void PrintTo(const Event& e, std::ostream* os) { *os << EventToJson(e).dump(); }

void StateStoreConformance::SetUp() {
  store_ = GetParam()();
  ASSERT_NE(store_, nullptr) << "the factory made no store";
}

void StateStoreConformance::TearDown() { store_.reset(); }

namespace {

using Batch = WriteBatch;
constexpr size_t kAll = std::numeric_limits<size_t>::max();

TimePoint Ms(int64_t ms) { return FromUnixMillis(1'700'000'000'000 + ms); }

Pool MakePool(const std::string& name, int64_t generation = 1) {
  Pool p;
  p.spec.name = PoolName(name);
  p.spec.instance_count = 2;
  p.spec.size = {.vcpus = 2, .memory_mib = 2048, .max_processes = 1000};
  p.spec.network.subnet = *ParseIpv4Subnet("10.231.0.0/24");
  p.spec.share.source = "/srv/share/" + name;
  p.spec.admin.name = "dsvmuser";
  p.spec.admin.ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9v admin@" + name;
  p.spec.admin.password_hash = "$6$salt$hash";
  p.created_at = Ms(1);
  p.updated_at = Ms(2 + generation);
  p.generation = generation;
  return p;
}

Instance MakeInstance(const std::string& pool, int64_t index, const std::string& suffix = "ab12",
                      InstancePhase phase = InstancePhase::kPending) {
  Instance i;
  i.id = InstanceId(pool + "-" + std::to_string(index) + "-" + suffix);
  i.pool = PoolName(pool);
  i.index = index;
  i.phase = phase;
  i.reason = phase == InstancePhase::kFailed ? "container exited" : "";
  i.address = "10.231.0." + std::to_string(2 + index);
  i.created_at = Ms(10 + index);
  i.phase_since = Ms(20 + index);
  return i;
}

User MakeUser(const std::string& name, int64_t uid) {
  User u;
  u.name = UserName(name);
  u.uid = uid;
  u.ssh_keys = {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI " + name + "@laptop"};
  u.password_hash = "$6$salt$" + name;
  u.admin = name == "alice";
  u.created_at = Ms(30);
  return u;
}

Event MakeEvent(const std::string& action, const std::string& subject, int64_t ms = 40) {
  return Event{.seq = 0,
               .time = Ms(ms),
               .actor = "root",
               .action = action,
               .subject = subject,
               .detail = "detail of " + action + " " + subject};
}

// `e` as the store returns it: with its seq.
Event WithSeq(Event e, int64_t seq) {
  e.seq = seq;
  return e;
}

std::vector<std::string> Names(const std::vector<Pool>& pools) {
  std::vector<std::string> out;
  for (const Pool& p : pools) out.push_back(p.name().value());
  return out;
}

std::vector<std::string> Ids(const std::vector<Instance>& instances) {
  std::vector<std::string> out;
  for (const Instance& i : instances) out.push_back(i.id.value());
  return out;
}

std::vector<std::string> Names(const std::vector<User>& users) {
  std::vector<std::string> out;
  for (const User& u : users) out.push_back(u.name.value());
  return out;
}

std::vector<std::string> Actions(const std::vector<Event>& events) {
  std::vector<std::string> out;
  for (const Event& e : events) out.push_back(e.action);
  return out;
}

// Everything a store holds, for "nothing changed" checks.
struct Snapshot {
  std::vector<Pool> pools;
  std::vector<Instance> instances;
  std::vector<User> users;
  std::vector<Event> events;
  std::map<std::string, std::optional<std::string>> meta;
  std::vector<ResourceGroup> groups;
  std::vector<std::vector<Deployment>> deployments;  // of each group
  std::vector<ArmResource> resources;
  std::vector<StorageAccount> accounts;
  std::vector<FileShare> shares;
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

void PrintTo(const Snapshot& s, std::ostream* os) {
  *os << Names(s.pools).size() << " pools, " << s.instances.size() << " instances, " << s.users.size() << " users, "
      << s.events.size() << " events";
}

Snapshot Take(StateStore& store, const std::vector<std::string>& meta_keys) {
  Snapshot s;
  auto pools = store.ListPools();
  EXPECT_TRUE(pools.ok()) << pools.status();
  s.pools = pools.value_or({});
  auto instances = store.ListInstances();
  EXPECT_TRUE(instances.ok()) << instances.status();
  s.instances = instances.value_or({});
  auto users = store.ListUsers();
  EXPECT_TRUE(users.ok()) << users.status();
  s.users = users.value_or({});
  auto events = store.ListEvents(0, kAll);
  EXPECT_TRUE(events.ok()) << events.status();
  s.events = events.value_or({});
  for (const std::string& key : meta_keys) {
    auto value = store.GetMeta(key);
    s.meta[key] = value.ok() ? std::optional(*value) : std::nullopt;
  }
  auto groups = store.ListResourceGroups();
  EXPECT_TRUE(groups.ok()) << groups.status();
  s.groups = groups.value_or({});
  for (const ResourceGroup& g : s.groups) {
    auto deployments = store.ListDeployments(g.name);
    EXPECT_TRUE(deployments.ok()) << deployments.status();
    s.deployments.push_back(deployments.value_or({}));
  }
  auto resources = store.ListResources();
  EXPECT_TRUE(resources.ok()) << resources.status();
  s.resources = resources.value_or({});
  auto accounts = store.ListStorageAccounts();
  EXPECT_TRUE(accounts.ok()) << accounts.status();
  s.accounts = accounts.value_or({});
  auto shares = store.ListShares();
  EXPECT_TRUE(shares.ok()) << shares.status();
  s.shares = shares.value_or({});
  return s;
}

ResourceGroup MakeGroup(const std::string& name) {
  return ResourceGroup{name, "local", {{"team", "ds"}}, Ms(50)};
}

Deployment MakeDeployment(const std::string& group, const std::string& name, int64_t ms) {
  Deployment d;
  d.group = group;
  d.name = name;
  d.state = ProvisioningState::kSucceeded;
  d.timestamp = Ms(ms);
  d.duration_ms = 1234;
  d.correlation_id = "6f1c0b52-0d6c-4bd8-a1a5-0e3d3c0b6a11";
  d.parameters = OrderedJson::parse(R"({"vmssName": {"type": "String", "value": "pool1"}})");
  d.outputs = OrderedJson::parse(R"({"z": {"type": "Int", "value": 1}, "a": {"type": "String", "value": "x"}})");
  d.output_resources = {"/subscriptions/s/resourceGroups/" + group + "/providers/Microsoft.Compute/virtualMachineScaleSets/pool1"};
  d.operations.push_back(DeploymentOperation{.operation_id = "0123456789ABCDEF",
                                             .state = ProvisioningState::kSucceeded,
                                             .timestamp = Ms(ms),
                                             .duration_ms = 99,
                                             .resource_id = d.output_resources[0],
                                             .resource_type = "Microsoft.Compute/virtualMachineScaleSets",
                                             .resource_name = "pool1",
                                             .status_code = "OK"});
  return d;
}

ArmResource MakeResource(const std::string& group, const std::string& type, const std::string& name) {
  ArmResource r;
  r.id = "/subscriptions/s/resourceGroups/" + group + "/providers/" + type + "/" + name;
  r.group = group;
  r.type = type;
  r.name = name;
  r.api_version = "2017-06-01";
  r.location = "local";
  r.body = OrderedJson::parse(R"({"properties": {"frontendPort": 22, "backendPort": 22}})");
  r.deployment = "dep1";
  r.changed_at = Ms(60);
  return r;
}

std::vector<std::string> Names(const std::vector<Deployment>& deployments) {
  std::vector<std::string> out;
  for (const Deployment& d : deployments) out.push_back(d.name);
  return out;
}

// ---------------------------------------------------------------- empty

TEST_P(StateStoreConformance, NewStoreIsEmpty) {
  auto pools = store().ListPools();
  ASSERT_TRUE(pools.ok()) << pools.status();
  EXPECT_TRUE(pools->empty());
  auto instances = store().ListInstances();
  ASSERT_TRUE(instances.ok()) << instances.status();
  EXPECT_TRUE(instances->empty());
  auto users = store().ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_TRUE(users->empty());
  auto events = store().ListEvents(0, kAll);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_TRUE(events->empty());
  auto tail = store().TailEvents(10);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_TRUE(tail->empty());

  EXPECT_EQ(store().GetPool(PoolName("alpha")).status(), NotFound("pool 'alpha' does not exist"));
  EXPECT_EQ(store().GetInstance(InstanceId("alpha-0-ab12")).status(),
            NotFound("instance 'alpha-0-ab12' does not exist"));
  EXPECT_EQ(store().GetUser(UserName("alice")).status(), NotFound("user 'alice' does not exist"));
  EXPECT_EQ(store().GetMeta("uid.next").status(), NotFound("meta key 'uid.next' does not exist"));
}

TEST_P(StateStoreConformance, EmptyBatchIsOkAndChangesNothing) {
  Snapshot before = Take(store(), {});
  EXPECT_EQ(store().Write(Batch()), Status::Ok());
  EXPECT_EQ(Take(store(), {}), before);
}

// ---------------------------------------------------------------- pools

TEST_P(StateStoreConformance, CreatedPoolsAreReadBackAndListedByName) {
  Batch b;
  for (const char* name : {"gamma", "alpha", "beta"}) b.Add(Batch::CreatePool{MakePool(name)});
  ASSERT_EQ(store().Write(b), Status::Ok());

  auto alpha = store().GetPool(PoolName("alpha"));
  ASSERT_TRUE(alpha.ok()) << alpha.status();
  EXPECT_EQ(*alpha, MakePool("alpha"));
  auto pools = store().ListPools();
  ASSERT_TRUE(pools.ok()) << pools.status();
  EXPECT_EQ(Names(*pools), (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ(*pools, (std::vector<Pool>{MakePool("alpha"), MakePool("beta"), MakePool("gamma")}));
}

TEST_P(StateStoreConformance, CreatingAnExistingPoolIsAlreadyExists) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha")})), Status::Ok());
  Pool other = MakePool("alpha", 7);
  other.spec.instance_count = 5;
  EXPECT_EQ(store().Write(Batch().Add(Batch::CreatePool{other})), AlreadyExists("pool 'alpha' already exists"));
  auto stored = store().GetPool(PoolName("alpha"));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, MakePool("alpha"));
}

TEST_P(StateStoreConformance, UpdatePoolReplacesItWhenTheGenerationMatches) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha", 1)})), Status::Ok());
  Pool v2 = MakePool("alpha", 2);
  v2.spec.instance_count = 4;
  v2.state = PoolState::kDeleting;
  ASSERT_EQ(store().Write(Batch().Add(Batch::UpdatePool{v2, 1})), Status::Ok());
  auto stored = store().GetPool(PoolName("alpha"));
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, v2);
  EXPECT_EQ(stored->generation, 2);

  // The check is against the stored generation, now 2.
  Pool v3 = MakePool("alpha", 3);
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdatePool{v3, 2})), Status::Ok());
  EXPECT_EQ(store().GetPool(PoolName("alpha")).value_or({}), v3);
}

TEST_P(StateStoreConformance, UpdatePoolWithAStaleGenerationIsAbortedAndChangesNothing) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha", 3)})), Status::Ok());
  for (int64_t stale : {1, 2, 4}) {
    SCOPED_TRACE(stale);
    EXPECT_EQ(store().Write(Batch().Add(Batch::UpdatePool{MakePool("alpha", stale + 1), stale})),
              Aborted("pool 'alpha' was changed concurrently; retry"));
  }
  EXPECT_EQ(store().GetPool(PoolName("alpha")).value_or({}), MakePool("alpha", 3));
}

TEST_P(StateStoreConformance, UpdatingOrDeletingAMissingPoolIsNotFound) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha")})), Status::Ok());
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdatePool{MakePool("beta", 2), 1})),
            NotFound("pool 'beta' does not exist"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeletePool{PoolName("beta")})), NotFound("pool 'beta' does not exist"));
  EXPECT_EQ(Names(store().ListPools().value_or({})), std::vector<std::string>{"alpha"});
}

TEST_P(StateStoreConformance, DeletedPoolIsGoneAndItsNameFree) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha")}).Add(Batch::CreatePool{MakePool("beta")})),
            Status::Ok());
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeletePool{PoolName("alpha")})), Status::Ok());
  EXPECT_EQ(store().GetPool(PoolName("alpha")).status(), NotFound("pool 'alpha' does not exist"));
  EXPECT_EQ(Names(store().ListPools().value_or({})), std::vector<std::string>{"beta"});
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeletePool{PoolName("alpha")})), NotFound("pool 'alpha' does not exist"));

  Pool again = MakePool("alpha", 1);
  again.spec.instance_count = 9;
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{again})), Status::Ok());
  EXPECT_EQ(store().GetPool(PoolName("alpha")).value_or({}), again);
}

// ---------------------------------------------------------------- instances

TEST_P(StateStoreConformance, PutInstanceInsertsThenReplaces) {
  Instance i = MakeInstance("alpha", 0);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{i})), Status::Ok());
  auto got = store().GetInstance(i.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, i);

  i.phase = InstancePhase::kFailed;
  i.reason = "agent silent for 120s";
  i.phase_since = Ms(500);
  i.draining = true;
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{i})), Status::Ok());
  EXPECT_EQ(store().GetInstance(i.id).value_or({}), i);
  EXPECT_EQ(store().ListInstances().value_or({}), std::vector<Instance>{i});
}

TEST_P(StateStoreConformance, DeleteInstanceRemovesItAndAMissingOneIsNotFound) {
  Instance a = MakeInstance("alpha", 0), b = MakeInstance("alpha", 1);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{a}).Add(Batch::PutInstance{b})), Status::Ok());
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteInstance{a.id})), Status::Ok());
  EXPECT_EQ(store().GetInstance(a.id).status(), NotFound("instance 'alpha-0-ab12' does not exist"));
  EXPECT_EQ(store().ListInstances().value_or({}), std::vector<Instance>{b});
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteInstance{a.id})),
            NotFound("instance 'alpha-0-ab12' does not exist"));
}

TEST_P(StateStoreConformance, UpdateInstanceReplacesItWhenItIsAsExpected) {
  const Instance read = MakeInstance("alpha", 0, "ab12", InstancePhase::kReady);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{read})), Status::Ok());
  Instance drained = read;
  drained.draining = true;
  ASSERT_EQ(store().Write(Batch().Add(Batch::UpdateInstance{drained, read})), Status::Ok());
  EXPECT_EQ(store().GetInstance(read.id).value_or({}), drained);
  // Back again, in the same batch as a second change expecting the first.
  Instance failed = read;
  failed.phase = InstancePhase::kFailed;
  ASSERT_EQ(store().Write(Batch().Add(Batch::UpdateInstance{read, drained}).Add(Batch::UpdateInstance{failed, read})),
            Status::Ok());
  EXPECT_EQ(store().GetInstance(read.id).value_or({}), failed);
}

TEST_P(StateStoreConformance, UpdateInstanceOfAChangedOrMissingRecordFailsAndChangesNothing) {
  const Instance read = MakeInstance("alpha", 0, "ab12", InstancePhase::kBooting);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{read})), Status::Ok());
  Instance ready = read;
  ready.phase = InstancePhase::kReady;
  ready.phase_since = Ms(900);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{ready})), Status::Ok());
  // A writer that read the record before it became Ready.
  Instance drained = read;
  drained.draining = true;
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdateInstance{drained, read})),
            Aborted("instance 'alpha-0-ab12' was changed concurrently; retry"));
  EXPECT_EQ(store().GetInstance(read.id).value_or({}), ready);
  Instance ghost = MakeInstance("ghost", 0);
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdateInstance{ghost, ghost})),
            NotFound("instance 'ghost-0-ab12' does not exist"));
  EXPECT_EQ(store().ListInstances().value_or({}), std::vector<Instance>{ready});
}

TEST_P(StateStoreConformance, ListInstancesOrdersByPoolThenIndexAndFiltersByPool) {
  Batch b;
  // Inserted out of order; ids do not sort like (pool, index): "beta-10" < "beta-2".
  for (const Instance& i :
       {MakeInstance("beta", 10), MakeInstance("alpha", 1), MakeInstance("beta", 2), MakeInstance("alpha", 0, "zz99"),
        MakeInstance("alpha", 0, "aa00"), MakeInstance("gamma", 0)}) {
    b.Add(Batch::PutInstance{i});
  }
  ASSERT_EQ(store().Write(b), Status::Ok());

  auto all = store().ListInstances();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{"alpha-0-aa00", "alpha-0-zz99", "alpha-1-ab12", "beta-2-ab12",
                                                 "beta-10-ab12", "gamma-0-ab12"}));
  auto beta = store().ListInstances(PoolName("beta"));
  ASSERT_TRUE(beta.ok()) << beta.status();
  EXPECT_EQ(*beta, (std::vector<Instance>{MakeInstance("beta", 2), MakeInstance("beta", 10)}));
  auto none = store().ListInstances(PoolName("delta"));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
}

TEST_P(StateStoreConformance, PutInstanceCanMoveItWithinTheOrder) {
  Instance i = MakeInstance("alpha", 5);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{i}).Add(Batch::PutInstance{MakeInstance("alpha", 3)})),
            Status::Ok());
  i.index = 1;
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{i})), Status::Ok());
  EXPECT_EQ(Ids(store().ListInstances(PoolName("alpha")).value_or({})),
            (std::vector<std::string>{"alpha-5-ab12", "alpha-3-ab12"}));
}

TEST_P(StateStoreConformance, InstancesOutliveTheirPoolUntilDeleted) {
  ASSERT_EQ(store().Write(
                Batch().Add(Batch::CreatePool{MakePool("alpha")}).Add(Batch::PutInstance{MakeInstance("alpha", 0)})),
            Status::Ok());
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeletePool{PoolName("alpha")})), Status::Ok());
  EXPECT_EQ(store().ListInstances(PoolName("alpha")).value_or({}), std::vector<Instance>{MakeInstance("alpha", 0)});
  // And an instance may be recorded for a pool that does not exist.
  EXPECT_EQ(store().Write(Batch().Add(Batch::PutInstance{MakeInstance("ghost", 0)})), Status::Ok());
}

// ---------------------------------------------------------------- users

TEST_P(StateStoreConformance, CreatedUsersAreReadBackAndListedByUid) {
  Batch b;
  b.Add(Batch::CreateUser{MakeUser("alice", 2002)})
      .Add(Batch::CreateUser{MakeUser("bob", 2000)})
      .Add(Batch::CreateUser{MakeUser("carol", 10000)})
      .Add(Batch::CreateUser{MakeUser("dave", 2001)});
  ASSERT_EQ(store().Write(b), Status::Ok());

  auto alice = store().GetUser(UserName("alice"));
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(*alice, MakeUser("alice", 2002));
  auto users = store().ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_EQ(Names(*users), (std::vector<std::string>{"bob", "dave", "alice", "carol"}));
  EXPECT_EQ(users->back(), MakeUser("carol", 10000));
}

TEST_P(StateStoreConformance, CreateUserWithATakenNameIsAlreadyExists) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("alice", 2000)})), Status::Ok());
  // The name is checked first, even when the uid is taken too.
  EXPECT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("alice", 2000)})),
            AlreadyExists("user 'alice' already exists"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("alice", 3000)})),
            AlreadyExists("user 'alice' already exists"));
  EXPECT_EQ(store().ListUsers().value_or({}), std::vector<User>{MakeUser("alice", 2000)});
}

TEST_P(StateStoreConformance, CreateUserWithATakenUidIsAlreadyExists) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("alice", 2000)})), Status::Ok());
  EXPECT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("bob", 2000)})), AlreadyExists("uid 2000 is taken"));
  EXPECT_EQ(store().GetUser(UserName("bob")).status(), NotFound("user 'bob' does not exist"));
  EXPECT_EQ(store().ListUsers().value_or({}), std::vector<User>{MakeUser("alice", 2000)});
}

TEST_P(StateStoreConformance, UpdateUserReplacesEverythingButTheUid) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreateUser{MakeUser("bob", 2000)})), Status::Ok());
  User bob = MakeUser("bob", 2000);
  bob.ssh_keys = {"ssh-rsa AAAAB3 one", "ssh-ed25519 AAAAC3 two"};
  bob.password_hash.clear();
  bob.admin = true;
  ASSERT_EQ(store().Write(Batch().Add(Batch::UpdateUser{bob})), Status::Ok());
  EXPECT_EQ(store().GetUser(UserName("bob")).value_or({}), bob);

  User moved = bob;
  moved.uid = 2001;
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdateUser{moved})), InvalidArgument("a user's uid never changes"));
  EXPECT_EQ(store().GetUser(UserName("bob")).value_or({}), bob);
}

TEST_P(StateStoreConformance, UpdatingOrDeletingAMissingUserIsNotFound) {
  EXPECT_EQ(store().Write(Batch().Add(Batch::UpdateUser{MakeUser("bob", 2000)})),
            NotFound("user 'bob' does not exist"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteUser{UserName("bob")})), NotFound("user 'bob' does not exist"));
  EXPECT_TRUE(store().ListUsers().value_or({MakeUser("x", 1)}).empty());
}

TEST_P(StateStoreConformance, DeletedUserFreesItsNameAndUid) {
  ASSERT_EQ(store().Write(
                Batch().Add(Batch::CreateUser{MakeUser("alice", 2000)}).Add(Batch::CreateUser{MakeUser("bob", 2001)})),
            Status::Ok());
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteUser{UserName("alice")})), Status::Ok());
  EXPECT_EQ(store().GetUser(UserName("alice")).status(), NotFound("user 'alice' does not exist"));
  EXPECT_EQ(store().ListUsers().value_or({}), std::vector<User>{MakeUser("bob", 2001)});

  ASSERT_EQ(
      store().Write(
          Batch().Add(Batch::CreateUser{MakeUser("carol", 2000)}).Add(Batch::CreateUser{MakeUser("alice", 2002)})),
      Status::Ok());
  EXPECT_EQ(Names(store().ListUsers().value_or({})), (std::vector<std::string>{"carol", "bob", "alice"}));
}

// ---------------------------------------------------------------- meta

TEST_P(StateStoreConformance, MetaIsPutReadAndReplaced) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutMeta{"uid.next", "2000"}).Add(Batch::PutMeta{"cluster.id", "c1"})),
            Status::Ok());
  EXPECT_EQ(store().GetMeta("uid.next").value_or("?"), "2000");
  EXPECT_EQ(store().GetMeta("cluster.id").value_or("?"), "c1");
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutMeta{"uid.next", "2001"})), Status::Ok());
  EXPECT_EQ(store().GetMeta("uid.next").value_or("?"), "2001");
  EXPECT_EQ(store().GetMeta("uid").status(), NotFound("meta key 'uid' does not exist"));
}

TEST_P(StateStoreConformance, MetaValuesKeepEveryByte) {
  const std::string binary("\0\x01\xff\xfe key\n\0", 10);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutMeta{"binary", binary}).Add(Batch::PutMeta{"empty", ""})),
            Status::Ok());
  auto got = store().GetMeta("binary");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, binary);
  EXPECT_EQ(got->size(), 10u);
  auto empty = store().GetMeta("empty");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(*empty, "");
}

// ---------------------------------------------------------------- events

TEST_P(StateStoreConformance, EventsGetIncreasingSeqsAndKeepTheirFields) {
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::AppendEvent{MakeEvent("pool.create", "pool/alpha", 1)})
                              .Add(Batch::AppendEvent{MakeEvent("user.create", "user/alice", 2)})),
            Status::Ok());
  Event third = MakeEvent("instance.ready", "instance/alpha-0-ab12", 3);
  third.seq = 12345;  // ignored: the store assigns seq
  third.actor = "agent:alpha-0-ab12";
  ASSERT_EQ(store().Write(Batch().Add(Batch::AppendEvent{third})), Status::Ok());

  auto events = store().ListEvents(0, kAll);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_GT((*events)[0].seq, 0);
  EXPECT_LT((*events)[0].seq, (*events)[1].seq);
  EXPECT_LT((*events)[1].seq, (*events)[2].seq);
  EXPECT_NE((*events)[2].seq, 12345);
  EXPECT_EQ((*events)[0], WithSeq(MakeEvent("pool.create", "pool/alpha", 1), (*events)[0].seq));
  EXPECT_EQ((*events)[1], WithSeq(MakeEvent("user.create", "user/alice", 2), (*events)[1].seq));
  EXPECT_EQ((*events)[2], WithSeq(third, (*events)[2].seq));
}

TEST_P(StateStoreConformance, ListEventsReturnsThoseAfterASeqOldestFirstUpToALimit) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(store().Write(Batch().Add(Batch::AppendEvent{MakeEvent("e" + std::to_string(i), "pool/alpha", i)})),
              Status::Ok());
  }
  auto all = store().ListEvents(0, kAll);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(Actions(*all), (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4", "e5"}));
  std::vector<int64_t> seq;
  for (const Event& e : *all) seq.push_back(e.seq);

  auto page = store().ListEvents(seq[1], 2);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(Actions(*page), (std::vector<std::string>{"e2", "e3"}));
  EXPECT_EQ(*page, (std::vector<Event>{(*all)[2], (*all)[3]}));
  // Paging with the last seq seen walks the rest.
  EXPECT_EQ(Actions(store().ListEvents(page->back().seq, 2).value_or({})), (std::vector<std::string>{"e4", "e5"}));
  EXPECT_TRUE(store().ListEvents(seq[5], 10).value_or({(*all)[0]}).empty());
  EXPECT_TRUE(store().ListEvents(0, 0).value_or({(*all)[0]}).empty());
  EXPECT_EQ(Actions(store().ListEvents(-1, 1).value_or({})), std::vector<std::string>{"e0"});
}

TEST_P(StateStoreConformance, TailEventsReturnsTheNewestOldestFirst) {
  Batch b;
  for (int i = 0; i < 5; ++i) b.Add(Batch::AppendEvent{MakeEvent("e" + std::to_string(i), "pool/alpha", i)});
  ASSERT_EQ(store().Write(b), Status::Ok());

  auto tail = store().TailEvents(2);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(Actions(*tail), (std::vector<std::string>{"e3", "e4"}));
  EXPECT_LT((*tail)[0].seq, (*tail)[1].seq);
  EXPECT_EQ(Actions(store().TailEvents(5).value_or({})), (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}));
  EXPECT_EQ(Actions(store().TailEvents(kAll).value_or({})), (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}));
  EXPECT_TRUE(store().TailEvents(0).value_or({MakeEvent("x", "y")}).empty());
  EXPECT_EQ(store().TailEvents(5).value_or({}), store().ListEvents(0, kAll).value_or({}));
}

// ---------------------------------------------------------------- atomicity

// Every failing operation, placed third in a batch after two that would
// succeed and before more that would, and again after changes to every
// table: the store must hold exactly what it held, events included.
TEST_P(StateStoreConformance, ABatchWithAFailingOperationChangesNothing) {
  // alpha and alice are what the failing ops trip on; omega and olga are what
  // the wide batch changes.
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::CreatePool{MakePool("alpha", 3)})
                              .Add(Batch::PutInstance{MakeInstance("alpha", 0)})
                              .Add(Batch::CreateUser{MakeUser("alice", 2000)})
                              .Add(Batch::CreatePool{MakePool("omega", 1)})
                              .Add(Batch::PutInstance{MakeInstance("omega", 0)})
                              .Add(Batch::CreateUser{MakeUser("olga", 2500)})
                              .Add(Batch::PutMeta{"uid.next", "2501"})
                              .Add(Batch::AppendEvent{MakeEvent("setup", "pool/alpha")})),
            Status::Ok());
  const std::vector<std::string> keys = {"uid.next", "new.key"};
  const Snapshot before = Take(store(), keys);
  ASSERT_EQ(before.events.size(), 1u);
  ASSERT_EQ(before.pools.size(), 2u);

  User olga = MakeUser("olga", 2500);
  olga.ssh_keys.clear();
  struct Case {
    const char* name;
    Batch::Op op;
    Status want;
  };
  const std::vector<Case> cases = {
      {"CreatePool exists", Batch::CreatePool{MakePool("alpha")}, AlreadyExists("pool 'alpha' already exists")},
      {"UpdatePool missing", Batch::UpdatePool{MakePool("zeta"), 1}, NotFound("pool 'zeta' does not exist")},
      {"UpdatePool stale", Batch::UpdatePool{MakePool("alpha", 9), 2},
       Aborted("pool 'alpha' was changed concurrently; retry")},
      {"DeletePool missing", Batch::DeletePool{PoolName("zeta")}, NotFound("pool 'zeta' does not exist")},
      {"UpdateInstance missing", Batch::UpdateInstance{MakeInstance("zeta", 0), MakeInstance("zeta", 0)},
       NotFound("instance 'zeta-0-ab12' does not exist")},
      {"UpdateInstance stale",
       Batch::UpdateInstance{MakeInstance("alpha", 0), MakeInstance("alpha", 0, "ab12", InstancePhase::kReady)},
       Aborted("instance 'alpha-0-ab12' was changed concurrently; retry")},
      {"DeleteInstance missing", Batch::DeleteInstance{InstanceId("zeta-0-ab12")},
       NotFound("instance 'zeta-0-ab12' does not exist")},
      {"CreateUser name", Batch::CreateUser{MakeUser("alice", 3000)}, AlreadyExists("user 'alice' already exists")},
      {"CreateUser uid", Batch::CreateUser{MakeUser("zed", 2000)}, AlreadyExists("uid 2000 is taken")},
      {"UpdateUser missing", Batch::UpdateUser{MakeUser("zed", 3000)}, NotFound("user 'zed' does not exist")},
      {"UpdateUser uid", Batch::UpdateUser{MakeUser("alice", 2999)}, InvalidArgument("a user's uid never changes")},
      {"DeleteUser missing", Batch::DeleteUser{UserName("zed")}, NotFound("user 'zed' does not exist")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Batch narrow;
    narrow.Add(Batch::AppendEvent{MakeEvent("before", "pool/beta")})
        .Add(Batch::CreatePool{MakePool("beta")})
        .Add(c.op)
        .Add(Batch::CreateUser{MakeUser("bob", 2001)})
        .Add(Batch::AppendEvent{MakeEvent("after", "user/bob")});
    EXPECT_EQ(store().Write(narrow), c.want);
    EXPECT_EQ(Take(store(), keys), before);

    Batch wide;
    wide.Add(Batch::UpdatePool{MakePool("omega", 2), 1})
        .Add(Batch::PutInstance{MakeInstance("omega", 0, "ab12", InstancePhase::kReady)})
        .Add(Batch::PutInstance{MakeInstance("omega", 1)})
        .Add(Batch::DeleteInstance{InstanceId("omega-0-ab12")})
        .Add(Batch::UpdateUser{olga})
        .Add(Batch::DeleteUser{UserName("olga")})
        .Add(Batch::CreateUser{MakeUser("oscar", 2600)})
        .Add(Batch::PutMeta{"uid.next", "2601"})
        .Add(Batch::PutMeta{"new.key", "v"})
        .Add(Batch::AppendEvent{MakeEvent("wide", "pool/omega")})
        .Add(Batch::DeletePool{PoolName("omega")})
        .Add(Batch::CreatePool{MakePool("beta")})
        .Add(c.op);
    EXPECT_EQ(store().Write(wide), c.want);
    EXPECT_EQ(Take(store(), keys), before);
  }

  // The store still works, and failed batches left no event behind.
  EXPECT_EQ(store().Write(Batch().Add(Batch::AppendEvent{MakeEvent("next", "pool/alpha")})), Status::Ok());
  auto events = store().ListEvents(0, kAll);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(Actions(*events), (std::vector<std::string>{"setup", "next"}));
  EXPECT_LT((*events)[0].seq, (*events)[1].seq);
}

TEST_P(StateStoreConformance, LaterOperationsSeeEarlierOnesOfTheSameBatch) {
  Pool v2 = MakePool("alpha", 2);
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::CreatePool{MakePool("alpha", 1)})
                              .Add(Batch::UpdatePool{v2, 1})
                              .Add(Batch::CreatePool{MakePool("beta")})
                              .Add(Batch::DeletePool{PoolName("beta")})
                              .Add(Batch::CreateUser{MakeUser("alice", 2000)})
                              .Add(Batch::DeleteUser{UserName("alice")})
                              .Add(Batch::CreateUser{MakeUser("bob", 2000)})
                              .Add(Batch::PutMeta{"k", "1"})
                              .Add(Batch::PutMeta{"k", "2"})),
            Status::Ok());
  EXPECT_EQ(store().ListPools().value_or({}), std::vector<Pool>{v2});
  EXPECT_EQ(store().ListUsers().value_or({}), std::vector<User>{MakeUser("bob", 2000)});
  EXPECT_EQ(store().GetMeta("k").value_or("?"), "2");

  // A uid taken earlier in the same batch: the whole batch fails.
  EXPECT_EQ(store().Write(
                Batch().Add(Batch::CreateUser{MakeUser("carol", 3000)}).Add(Batch::CreateUser{MakeUser("dave", 3000)})),
            AlreadyExists("uid 3000 is taken"));
  EXPECT_EQ(store().GetUser(UserName("carol")).status(), NotFound("user 'carol' does not exist"));
  // A generation bumped earlier in the same batch: the stale update fails.
  EXPECT_EQ(
      store().Write(
          Batch().Add(Batch::UpdatePool{MakePool("alpha", 3), 2}).Add(Batch::UpdatePool{MakePool("alpha", 4), 2})),
      Aborted("pool 'alpha' was changed concurrently; retry"));
  EXPECT_EQ(store().GetPool(PoolName("alpha")).value_or({}), v2);
}

// ---------------------------------------------------------------- concurrency

TEST_P(StateStoreConformance, ConcurrentEventAppendsGetDistinctIncreasingSeqs) {
  constexpr int kThreads = 4, kPerThread = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Event e = MakeEvent("t" + std::to_string(t), std::to_string(i), i);
        if (!store().Write(Batch().Add(Batch::AppendEvent{e})).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  auto events = store().ListEvents(0, kAll);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), size_t{kThreads * kPerThread});
  std::set<int64_t> seqs;
  std::map<std::string, int> next_of_thread;
  for (size_t k = 0; k < events->size(); ++k) {
    const Event& e = (*events)[k];
    seqs.insert(e.seq);
    if (k > 0) {
      ASSERT_LT((*events)[k - 1].seq, e.seq) << "at " << k;
    }
    // Each thread's events appear in the order it wrote them.
    EXPECT_EQ(e.subject, std::to_string(next_of_thread[e.action]++)) << e.action;
  }
  EXPECT_EQ(seqs.size(), size_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next_of_thread["t" + std::to_string(t)], kPerThread);
}

TEST_P(StateStoreConformance, ConcurrentCreatesClaimEachNameAndUidOnce) {
  constexpr int kThreads = 4, kUsers = 50;
  std::atomic<int> created{0}, already_exists{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kUsers; ++i) {
        // Every thread races for the same uids, under its own names half the
        // time, so both the name and the uid check are contended.
        std::string name = (i % 2 == 0 ? "u" : "t" + std::to_string(t) + "u") + std::to_string(i);
        Status s = store().Write(Batch()
                                     .Add(Batch::CreateUser{MakeUser(name, 5000 + i)})
                                     .Add(Batch::AppendEvent{MakeEvent("user.create", "user/" + name)}));
        if (s.ok()) {
          ++created;
        } else if (s.code() == StatusCode::kAlreadyExists) {
          ++already_exists;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(created.load(), kUsers);
  EXPECT_EQ(already_exists.load(), (kThreads - 1) * kUsers);
  EXPECT_EQ(other.load(), 0);

  auto users = store().ListUsers();
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->size(), size_t{kUsers});
  for (int i = 0; i < kUsers; ++i) EXPECT_EQ((*users)[i].uid, 5000 + i);
  // One event per user created, none for a failed batch.
  auto events = store().ListEvents(0, kAll);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> subjects, expected;
  for (const Event& e : *events) subjects.push_back(e.subject);
  for (const User& u : *users) expected.push_back("user/" + u.name.value());
  std::sort(subjects.begin(), subjects.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(subjects, expected);
}

// Runs `attempt` on kRaceThreads threads until each has had kRacePerThread
// successes; Aborted means "read again and retry". Returns how many attempts
// failed otherwise (a thread stops at its first).
constexpr int kRaceThreads = 4, kRacePerThread = 25;
int RaceReadModifyWrites(const std::function<Status()>& attempt) {
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kRaceThreads; ++t) {
    threads.emplace_back([&] {
      for (int done = 0; done < kRacePerThread;) {
        Status s = attempt();
        if (s.ok()) {
          ++done;
        } else if (s.code() != StatusCode::kAborted) {
          ++other;
          return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  return other.load();
}

TEST_P(StateStoreConformance, ConcurrentGenerationCheckedUpdatesLoseNone) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::CreatePool{MakePool("alpha", 1)})), Status::Ok());
  int other = RaceReadModifyWrites([&]() -> Status {
    DSP_ASSIGN_OR_RETURN(Pool current, store().GetPool(PoolName("alpha")));
    Pool next = current;
    next.generation = current.generation + 1;
    next.spec.instance_count = next.generation % (kMaxInstancesPerPool + 1);
    return store().Write(Batch().Add(Batch::UpdatePool{next, current.generation}));
  });
  EXPECT_EQ(other, 0);
  auto pool = store().GetPool(PoolName("alpha"));
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->generation, 1 + kRaceThreads * kRacePerThread);
  EXPECT_EQ(pool->spec.instance_count, (1 + kRaceThreads * kRacePerThread) % (kMaxInstancesPerPool + 1));
}

TEST_P(StateStoreConformance, ConcurrentConditionalInstanceUpdatesLoseNone) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutInstance{MakeInstance("alpha", 0)})), Status::Ok());
  const InstanceId id("alpha-0-ab12");
  int other = RaceReadModifyWrites([&]() -> Status {
    DSP_ASSIGN_OR_RETURN(Instance current, store().GetInstance(id));
    Instance next = current;
    next.reason += "x";
    next.draining = !current.draining;
    return store().Write(Batch().Add(Batch::UpdateInstance{next, current}));
  });
  EXPECT_EQ(other, 0);
  auto instance = store().GetInstance(id);
  ASSERT_TRUE(instance.ok()) << instance.status();
  EXPECT_EQ(instance->reason, std::string(kRaceThreads * kRacePerThread, 'x'));
  EXPECT_FALSE(instance->draining);  // toggled an even number of times
}

// ---------------------------------------------------------------- deployments

TEST_P(StateStoreConformance, ResourceGroupsAreFoundWithoutCase) {
  EXPECT_EQ(store().GetResourceGroup("rg1").status(), NotFound("resource group 'rg1' does not exist"));
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("My-RG")})
                              .Add(Batch::PutResourceGroup{MakeGroup("alpha")})),
            Status::Ok());
  auto g = store().GetResourceGroup("my-rg");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(*g, MakeGroup("My-RG"));  // keeps the case it was given
  auto list = store().ListResourceGroups();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "alpha");
  EXPECT_EQ((*list)[1].name, "My-RG");

  ResourceGroup tagged = MakeGroup("MY-RG");  // the same group: replaced
  tagged.tags = {{"cost", "42"}};
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{tagged})), Status::Ok());
  EXPECT_EQ(store().GetResourceGroup("My-Rg").value_or({}), tagged);
  EXPECT_EQ(store().ListResourceGroups().value_or({}).size(), 2u);
}

TEST_P(StateStoreConformance, DeploymentsAndResourcesNeedTheirGroup) {
  const Snapshot before = Take(store(), {});
  EXPECT_EQ(store().Write(Batch().Add(Batch::PutDeployment{MakeDeployment("rg1", "dep1", 1)})),
            NotFound("resource group 'rg1' does not exist"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::PutResource{MakeResource("rg1", "Microsoft.Network/loadBalancers", "lb")})),
            NotFound("resource group 'rg1' does not exist"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteResourceGroup{"rg1"})),
            NotFound("resource group 'rg1' does not exist"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteDeployment{"rg1", "dep1"})),
            NotFound("deployment 'dep1' does not exist in resource group 'rg1'"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteResource{"/subscriptions/s/x"})),
            NotFound("resource '/subscriptions/s/x' does not exist"));
  EXPECT_EQ(Take(store(), {}), before);

  // In one batch, the group comes first.
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::PutResourceGroup{MakeGroup("rg1")})
                              .Add(Batch::PutDeployment{MakeDeployment("rg1", "dep1", 1)})
                              .Add(Batch::PutResource{MakeResource("rg1", "Microsoft.Network/loadBalancers", "lb")})),
            Status::Ok());
}

TEST_P(StateStoreConformance, DeploymentsKeepEverythingAndReplaceByName) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("rg1")})), Status::Ok());
  const Deployment d = MakeDeployment("rg1", "Dep1", 5);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutDeployment{d})), Status::Ok());
  auto back = store().GetDeployment("RG1", "dep1");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, d);
  EXPECT_EQ(back->outputs.begin().key(), "z");  // outputs keep their order

  Deployment again = MakeDeployment("rg1", "DEP1", 9);
  again.state = ProvisioningState::kFailed;
  again.error = OrderedJson{{"code", "DeploymentFailed"}, {"message", "At least one resource deployment operation failed."}};
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutDeployment{again})), Status::Ok());
  auto list = store().ListDeployments("rg1");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0], again);

  ASSERT_EQ(store().Write(Batch().Add(Batch::PutDeployment{MakeDeployment("rg1", "b", 7)})
                              .Add(Batch::PutDeployment{MakeDeployment("rg1", "a", 7)})
                              .Add(Batch::PutDeployment{MakeDeployment("rg1", "c", 2)})),
            Status::Ok());
  EXPECT_EQ(Names(store().ListDeployments("RG1").value_or({})), (std::vector<std::string>{"c", "a", "b", "DEP1"}));
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteDeployment{"rg1", "A"})), Status::Ok());
  EXPECT_EQ(Names(store().ListDeployments("rg1").value_or({})), (std::vector<std::string>{"c", "b", "DEP1"}));
  EXPECT_EQ(store().GetDeployment("rg1", "a").status(), NotFound("deployment 'a' does not exist in resource group 'rg1'"));
}

TEST_P(StateStoreConformance, AGroupKeepsItsNewestDeployments) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("rg1")})
                              .Add(Batch::PutResourceGroup{MakeGroup("rg2")})
                              .Add(Batch::PutDeployment{MakeDeployment("rg2", "other", 0)})),
            Status::Ok());
  Batch batch;
  for (size_t i = 0; i < kMaxDeploymentsPerGroup; ++i) {
    batch.Add(Batch::PutDeployment{MakeDeployment("rg1", "d" + std::to_string(i), 100 + static_cast<int64_t>(i))});
  }
  ASSERT_EQ(store().Write(batch), Status::Ok());
  // Replacing one makes no room; a new one deletes the oldest, even when the
  // new one's timestamp is older still.
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutDeployment{MakeDeployment("rg1", "d5", 5000)})), Status::Ok());
  EXPECT_EQ(store().ListDeployments("rg1").value_or({}).size(), kMaxDeploymentsPerGroup);
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutDeployment{MakeDeployment("rg1", "new", 1)})), Status::Ok());
  auto list = store().ListDeployments("rg1");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), kMaxDeploymentsPerGroup);
  EXPECT_EQ((*list)[0].name, "new");
  EXPECT_EQ((*list)[1].name, "d1");  // d0 went
  EXPECT_EQ(store().GetDeployment("rg1", "d0").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store().ListDeployments("rg2").value_or({}).size(), 1u);  // another group's are not counted
}

TEST_P(StateStoreConformance, ResourcesAreKeyedByIdWithoutCase) {
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("RG1")})
                              .Add(Batch::PutResourceGroup{MakeGroup("rg2")})),
            Status::Ok());
  const ArmResource lb = MakeResource("RG1", "Microsoft.Network/loadBalancers", "lb");
  const ArmResource vnet = MakeResource("rg1", "Microsoft.Network/virtualNetworks", "vnet");
  const ArmResource other = MakeResource("rg2", "Microsoft.Network/virtualNetworks", "vnet");
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResource{vnet}).Add(Batch::PutResource{lb}).Add(Batch::PutResource{other})),
            Status::Ok());
  auto got = store().GetResource(StoreKey(lb.id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, lb);
  auto of_rg1 = store().ListResources("rg1");
  ASSERT_TRUE(of_rg1.ok()) << of_rg1.status();
  ASSERT_EQ(of_rg1->size(), 2u);
  EXPECT_EQ((*of_rg1)[0], lb);  // by key: ".../microsoft.network/loadbalancers/lb" first
  EXPECT_EQ((*of_rg1)[1], vnet);
  EXPECT_EQ(store().ListResources().value_or({}).size(), 3u);

  ArmResource changed = lb;
  changed.id = StoreKey(lb.id);
  changed.body["properties"]["frontendPort"] = 2222;
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResource{changed})), Status::Ok());
  EXPECT_EQ(store().GetResource(lb.id).value_or({}), changed);
  EXPECT_EQ(store().ListResources("RG1").value_or({}).size(), 2u);
}

TEST_P(StateStoreConformance, AGroupWithResourcesIsNotDeletedAndItsDeploymentsGoWithIt) {
  const ArmResource lb = MakeResource("rg1", "Microsoft.Network/loadBalancers", "lb");
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::PutResourceGroup{MakeGroup("rg1")})
                              .Add(Batch::PutDeployment{MakeDeployment("rg1", "dep1", 1)})
                              .Add(Batch::PutResource{lb})),
            Status::Ok());
  const Snapshot before = Take(store(), {});
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteResourceGroup{"RG1"})),
            FailedPrecondition("resource group 'RG1' still holds 1 resources"));
  EXPECT_EQ(Take(store(), {}), before);

  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteResource{lb.id}).Add(Batch::DeleteResourceGroup{"RG1"})), Status::Ok());
  EXPECT_EQ(store().GetResourceGroup("rg1").status(), NotFound("resource group 'rg1' does not exist"));
  // A group made again under the name starts with no history.
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("rg1")})), Status::Ok());
  EXPECT_TRUE(store().ListDeployments("rg1").value_or({MakeDeployment("x", "y", 0)}).empty());
}

StorageAccount MakeAccount(const std::string& group, const std::string& name) {
  StorageAccount a;
  a.group = group;
  a.name = name;
  a.location = "local";
  a.keys = {StorageKey{"k1-" + name, Ms(60)}, StorageKey{"k2-" + name, Ms(61)}};
  a.created_at = Ms(60);
  return a;
}

FileShare MakeShare(const std::string& account, const std::string& name, const std::string& version = "") {
  FileShare s{account, name, 100, "SMB", "TransactionOptimized", {{"k", "v"}}, Ms(70)};
  if (!version.empty()) {
    s.deleted_version = version;
    s.deleted_at = Ms(80);
    s.purge_at = Ms(90);
  }
  return s;
}

TEST_P(StateStoreConformance, StorageAccountsAreKeyedByNameAndHeldByTheirGroup) {
  EXPECT_EQ(store().Write(Batch().Add(Batch::PutStorageAccount{MakeAccount("rg1", "files")})),
            NotFound("resource group 'rg1' does not exist"));
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::PutResourceGroup{MakeGroup("RG1")})
                              .Add(Batch::PutResourceGroup{MakeGroup("rg2")})
                              .Add(Batch::PutStorageAccount{MakeAccount("rg1", "files")})
                              .Add(Batch::PutStorageAccount{MakeAccount("rg2", "afiles")})),
            Status::Ok());
  auto got = store().GetStorageAccount("files");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, MakeAccount("rg1", "files"));
  EXPECT_EQ(store().ListStorageAccounts("Rg1").value_or({}), (std::vector<StorageAccount>{MakeAccount("rg1", "files")}));
  auto all = store().ListStorageAccounts();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "afiles");

  StorageAccount renewed = MakeAccount("rg1", "files");
  renewed.keys[0].value = "new";
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutStorageAccount{renewed})), Status::Ok());
  EXPECT_EQ(store().GetStorageAccount("files").value_or({}), renewed);

  const Snapshot before = Take(store(), {});
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteResourceGroup{"rg1"})),
            FailedPrecondition("resource group 'rg1' still holds 1 resources"));
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteStorageAccount{"nope"})),
            NotFound("storage account 'nope' does not exist"));
  EXPECT_EQ(Take(store(), {}), before);
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteStorageAccount{"files"}).Add(Batch::DeleteResourceGroup{"rg1"})),
            Status::Ok());
  EXPECT_EQ(store().GetStorageAccount("files").status(), NotFound("storage account 'files' does not exist"));
}

TEST_P(StateStoreConformance, DeletedSharesOutliveTheirAccount) {
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::PutResourceGroup{MakeGroup("rg1")})
                              .Add(Batch::PutStorageAccount{MakeAccount("rg1", "files")})
                              .Add(Batch::PutShare{MakeShare("files", "work")})
                              .Add(Batch::PutShare{MakeShare("files", "data")})),
            Status::Ok());
  EXPECT_EQ(store().Write(Batch().Add(Batch::PutShare{MakeShare("other", "work")})),
            NotFound("storage account 'other' does not exist"));
  // Soft delete: the live record goes, a versioned one comes.
  ASSERT_EQ(store().Write(Batch()
                              .Add(Batch::DeleteShare{"files", "work"})
                              .Add(Batch::PutShare{MakeShare("files", "work", "00000000000000AB")})
                              .Add(Batch::DeleteStorageAccount{"files"})),
            Status::Ok());
  auto deleted = store().GetShare("FILES", "work/00000000000000ab");
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, MakeShare("files", "work", "00000000000000AB"));
  EXPECT_EQ(store().GetShare("files", "work").status(),
            NotFound("share 'work' does not exist in storage account 'files'"));
  // The live share stays (the API soft-deletes every share first).
  EXPECT_EQ(store().ListShares("files").value_or({}),
            (std::vector<FileShare>{MakeShare("files", "data"), MakeShare("files", "work", "00000000000000AB")}));
  ASSERT_EQ(store().Write(Batch().Add(Batch::PutResourceGroup{MakeGroup("rg2")})
                              .Add(Batch::PutStorageAccount{MakeAccount("rg2", "zfiles")})
                              .Add(Batch::PutShare{MakeShare("zfiles", "work")})),
            Status::Ok());
  EXPECT_EQ(store().ListShares().value_or({}).size(), 3u);
  EXPECT_EQ(store().Write(Batch().Add(Batch::DeleteShare{"files", "work"})),
            NotFound("share 'work' does not exist in storage account 'files'"));
  ASSERT_EQ(store().Write(Batch().Add(Batch::DeleteShare{"files", "work/00000000000000AB"})), Status::Ok());
  EXPECT_EQ(store().ListShares("files").value_or({}), (std::vector<FileShare>{MakeShare("files", "data")}));
}

}  // namespace
}  // namespace dspool
