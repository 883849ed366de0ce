#include "controller/status.h"

#include <gtest/gtest.h>

namespace gantry::controller {
namespace {

translate::Result resultWith(const std::string& status) {
  translate::Result r;
  translate::ObjectStatus st;
  st.conditions.push_back({"Accepted", status, "Accepted", "", 1, ""});
  st.listeners.push_back({"l", {}, 0, {{"Programmed", status, "Programmed", "", 1, ""}}});
  r.statuses[{"gateway.networking.k8s.io", "Gateway", "ns", "gw"}] = st;
  return r;
}

TEST(StatusBookTest, LastTransitionTimeMovesOnlyWhenTheStatusDoes) {
  StatusBook book;
  auto r1 = resultWith("True");
  book.stamp(r1, "T1");
  auto r2 = resultWith("True");
  book.stamp(r2, "T2");
  const translate::ObjectKey key{"gateway.networking.k8s.io", "Gateway", "ns", "gw"};
  EXPECT_EQ(r2.statuses[key].conditions[0].lastTransitionTime, "T1");
  EXPECT_EQ(r2.statuses[key].listeners[0].conditions[0].lastTransitionTime, "T1");
  auto r3 = resultWith("False");
  book.stamp(r3, "T3");
  EXPECT_EQ(r3.statuses[key].conditions[0].lastTransitionTime, "T3");
  auto r4 = resultWith("False");
  book.stamp(r4, "T4");
  EXPECT_EQ(r4.statuses[key].conditions[0].lastTransitionTime, "T3");
}

TEST(StatusJsonTest, RouteParentsEchoTheFullParentRef) {
  translate::ObjectStatus st;
  translate::ParentStatus p;
  p.parentRef.name = "gateway-01";
  p.parentRef.ns = "test-infra";
  p.controllerName = "alb.networking.azure.io/alb-controller";
  st.parents.push_back(p);
  auto j = statusJson({"gateway.networking.k8s.io", "HTTPRoute", "test-infra", "r"}, st);
  const auto& ref = j["parents"][0]["parentRef"];
  EXPECT_EQ(ref["group"], "gateway.networking.k8s.io");
  EXPECT_EQ(ref["kind"], "Gateway");
  EXPECT_EQ(ref["namespace"], "test-infra");
  EXPECT_EQ(j["parents"][0]["controllerName"], "alb.networking.azure.io/alb-controller");
  auto policy = statusJson({"gateway.networking.k8s.io", "BackendTLSPolicy", "n", "p"}, st);
  EXPECT_TRUE(policy.contains("ancestors"));
}

} // namespace
} // namespace gantry::controller
