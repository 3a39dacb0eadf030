import ape
def test_probe(accounts, project):
    c = accounts[0].deploy(project.Probe)
    c.setx(5, sender=accounts[0])
    assert c.x() == 5
    with ape.reverts("probe: zero"):
        c.setx(0, sender=accounts[0])
