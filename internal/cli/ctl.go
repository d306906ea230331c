package cli

import "github.com/opengvp/gvp/internal/ctl"

func init() {
	extraCommands = append(extraCommands, ctl.NewCommand)
	extraExitCoders = append(extraExitCoders, func(err error) (int, bool) {
		if code := ctl.ExitCode(err); code == ExitUsage {
			return code, true
		}
		return 0, false
	})
}
