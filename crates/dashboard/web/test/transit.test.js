import { describe, expect, test } from "vitest";
import { transitNote } from "../src/pages/overview.js";

describe("the overview's transit figure", () => {
  const p = { upstream: "carrier", commit_bps: 10e6, projected_bps: 5e6, budget: 446, spent: 10, left: 436, at_risk: false, over: false };
  test("says the commit, the projection and the budget left", () => {
    expect(transitNote(p)).toBe("carrier: commit 10 Mbit/s · projected 5 Mbit/s · budget 436 of 446 samples left (10 spent) · within the commit");
  });
  test("says when the budget will not last, and when it is gone", () => {
    expect(transitNote({ ...p, at_risk: true })).toContain("at risk: the budget runs out before the period ends");
    expect(transitNote({ ...p, at_risk: true, over: true, left: 0 })).toContain("over the commit");
  });
  test("no commit, no note", () => {
    expect(transitNote({ ...p, commit_bps: 0 })).toBe(null);
  });
});
