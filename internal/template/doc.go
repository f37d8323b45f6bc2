// Package template is the AWS IoT provisioning-template language, pure:
// Parse checks a template body when it is created (CreateProvisioningTemplate,
// a CA's registrationConfig), and Evaluate resolves it against a device's
// parameters into a Plan of resources (a thing, a certificate, policies)
// and the device configuration, which the registry then applies in one
// transaction. No I/O and no clock; a Template is immutable and safe for
// concurrent use.
//
// The language is the subset of CloudFormation's that AWS documents for
// IoT: sections Parameters, Mappings, Resources and DeviceConfiguration;
// resources AWS::IoT::Thing, AWS::IoT::Certificate and AWS::IoT::Policy;
// intrinsic functions Ref, Fn::Join, Fn::Select, Fn::Split, Fn::Sub and
// Fn::FindInMap.
//
// Where AWS is silent, this package decides, preferring to refuse at create
// time what might otherwise fail, or mean something else, on every device:
//
//   - A Ref, or a ${Name} in Fn::Sub, to a name that is neither a declared
//     parameter nor a built-in AWS::IoT::Certificate::* parameter is
//     refused at Parse. (AWS's own CLI example references SerialNumber
//     without declaring it, and AWS appears to accept that; the spec's
//     recommendation was to accept it. fleetca refuses it so that a typo
//     fails once, at create time.) Built-ins need no declaration.
//   - Sections, resource keys, properties, override settings and functions
//     other than the documented ones are refused, naming them (Conditions,
//     Outputs, Fn::If, Fn::GetAtt, ...), rather than ignored.
//   - A policy made from a PolicyDocument is named by the upper-case hex
//     SHA-1 of its minified document (AWS says "a hash of the policy
//     document"; its example name has 40 hex digits). Minified means no
//     insignificant white space, members in the order written, numbers as
//     written, strings escaped only where JSON requires; a document given
//     as a string and the same document given as an object get one name.
//   - A certificate's Status is compared without regard to case (AWS's
//     examples write "Active") and planned upper-case; ACTIVE when absent.
//   - An absent OverrideSettings key means DO_NOTHING.
//   - The body must be exactly one JSON object, with no name given twice
//     and nothing after it. (The CLI and developer-guide fleet examples end
//     with a stray closing brace, which a lenient parser would ignore.)
//   - A parameter without a value fails only where it is used (the first
//     Ref or ${Name} to it), not merely because it is declared.
//   - ThingName may be absent (AWS's fleet-provisioning example omits it);
//     the plan then has an empty name, which the registry refuses.
//   - Fn::Select takes an integer index, as a number or a string; Fn::Split
//     refuses an empty delimiter; Fn::Sub refuses "${" without "}" and
//     "${}"; Fn::FindInMap takes a literal map name, and literal keys are
//     looked up at Parse.
//   - Bounds: at most 10 policy resources, parameter names of at most 128
//     characters, JSON nested at most 64 deep, and an evaluation produces at
//     most 1 MiB of text, so that large device parameters cannot be
//     multiplied into a large allocation.
package template
