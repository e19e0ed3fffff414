using System.Net;
using System.Net.Sockets;
using Toolforge.Agents.BuilderAgent.Git;
using Toolforge.Agents.BuilderAgent.Images;
using Toolforge.Agents.TestSupport;

namespace Toolforge.Agents.BuilderAgent.Tests;

public sealed partial class GitSourceTests
{
    [Fact]
    public void TheSourceLabel_NeverCarriesCredentials()
    {
        Assert.Equal("https://gitlab.example.org/repos/images.git", GitCheckout.RedactUrl("https://builder:glpat-secret@gitlab.example.org/repos/images.git"));
        Assert.Equal("https://gitlab.example.org/repos/images.git", GitCheckout.RedactUrl("https://gitlab.example.org/repos/images.git"));
        Assert.Equal("git@gitlab.example.org:repos/images.git", GitCheckout.RedactUrl("git@gitlab.example.org:repos/images.git"));
        // Forms Uri refuses or that hide credentials elsewhere: cut all the same (review finding).
        Assert.Equal("https://host/repo.git", GitCheckout.RedactUrl("https://user:p@ss@host/repo.git"));
        Assert.Equal("https://host:notaport/repo.git", GitCheckout.RedactUrl("https://user:SECRET@host:notaport/repo.git"));
        Assert.Equal("ssh://host/repo.git", GitCheckout.RedactUrl("ssh://git:SECRET@host/repo.git"));
        Assert.Equal("https://host/repo.git", GitCheckout.RedactUrl("https://host/repo.git?private_token=SECRET#x"));
        Assert.Equal("https://host/repo.git", GitCheckout.RedactUrl("https://user:pa/ss@host/repo.git"));
    }
}
