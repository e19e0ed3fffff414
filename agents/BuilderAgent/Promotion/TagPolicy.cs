namespace Toolforge.Agents.BuilderAgent.Promotion;

/// <summary>
/// Which tag means what: builds push <see cref="Testing"/>; <see cref="Latest"/> is moved only by promotion, to the
/// digest <see cref="Testing"/> had when it was verified (the manifest is copied: same digest, nothing rebuilt). The
/// command line keeps build.py's <c>--tag latest</c> and says that it skips the verify step; the daemon refuses it.
/// </summary>
public static class TagPolicy
{
    public const string Testing = "testing";

    public const string Latest = "latest";

    public const string LatestSkipsVerify =
        "toolforge-builder-agent: note: --tag latest (build.py's) builds and pushes latest directly and skips the verify step; "
        + "without it builds push testing, `verify` checks the pushed digest and `promote` points latest at exactly that digest";
}
