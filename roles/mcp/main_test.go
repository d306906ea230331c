package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/opengvp/gvp/internal/caller"
)

// helperEnv makes the test binary run as a caller process (for measurements that must not
// count the caller's memory): GVP_MCP_HELPER_CALLER=target, with GVP_MCP_HELPER_CALLS and
// GVP_MCP_HELPER_HOLD.
const helperEnv = "GVP_MCP_HELPER_CALLER"

func TestMain(m *testing.M) {
	if target := os.Getenv(helperEnv); target != "" {
		os.Exit(helperCaller(target))
	}
	os.Exit(m.Run())
}

func helperCaller(target string) int {
	n, _ := strconv.Atoi(os.Getenv("GVP_MCP_HELPER_CALLS"))
	hold, _ := time.ParseDuration(os.Getenv("GVP_MCP_HELPER_HOLD"))
	a, err := caller.NewAgent(caller.DefaultAgentConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer a.Close()
	res, err := a.Load(context.Background(), caller.LoadOptions{Options: caller.Options{Target: target, HangupAfter: hold},
		Calls: n, Concurrency: n, Rate: 200})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if res.Failed > 0 {
		return 1
	}
	return 0
}
