package lambda

import "github.com/aws/smithy-go/logging"

// SDKLogger is the logger the SDK's clients write to.
func (i *Invoker) SDKLogger() logging.Logger { return i.cfg.Logger }
